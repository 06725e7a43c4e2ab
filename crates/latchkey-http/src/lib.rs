//! latchkey's HTTP layer: the router and its state (`app`), the edge
//! (`http`), the OAuth/OIDC endpoints (`oauth`), the hosted login pages
//! (`login`, `pages`), the My Account API (`myaccount`) and the Management
//! API (`management`).

#![warn(unreachable_pub)]

pub mod app;
mod dbconnections;
mod guardian;
pub mod http;
mod login;
mod management;
mod myaccount;
mod oauth;
mod pages;
