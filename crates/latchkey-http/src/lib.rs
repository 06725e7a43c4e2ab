//! latchkey's HTTP layer: the router and its state (`app`), the edge
//! (`http`), the OAuth/OIDC endpoints (`oauth`), the hosted login pages
//! (`login`, `pages`) and the My Account API (`myaccount`).

pub mod app;
pub mod http;
pub mod login;
pub mod myaccount;
pub mod oauth;
pub mod pages;
