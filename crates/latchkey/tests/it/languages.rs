//! The hosted pages and code messages in the user's language: `ui_locales`
//! kept with the login for every page of it, `Accept-Language`, the
//! tenant's `enabled_locales` and default, the tenant's custom text (shown
//! escaped, refused with its path when it names what does not exist), a
//! code email in the page's language read from the test SMTP server; the
//! sign-up, "Forgot password?" and notice pages, and the mailed links'
//! emails and pages in the caller's language.

use std::process::Command;

use reqwest::StatusCode;

use crate::mfa_api::{ALWAYS, server_with, six_digits, tenant};
use crate::smtp::SmtpServer;
use crate::support::*;

const CAROL: &str = "carol@example.com";
const CAROL_PASSWORD: &str = "C4rol-has-a-long-password";

async fn apply(s: &TestServer, text: &str) {
    latchkey::tenant::apply::apply_text(&s.state, text)
        .await
        .unwrap();
}

/// A page's body, after checking its status; HTML escapes undone.
async fn page(res: reqwest::Response, status: StatusCode) -> String {
    html_unescape(&page_body(res, status).await)
}

/// The `lang` of a page's `<html>`.
fn lang(html: &str) -> &str {
    let start = html
        .find("<html lang=\"")
        .expect("an html element with lang")
        + 12;
    let end = html[start..].find('"').unwrap();
    &html[start..start + end]
}

async fn password(
    s: &TestServer,
    browser: &reqwest::Client,
    login_page: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    submit_login(browser, &s.url("/login"), login_page, email, password).await
}

async fn verify(
    s: &TestServer,
    browser: &reqwest::Client,
    step: &str,
    code: &str,
) -> reqwest::Response {
    let tx = hidden_input(step, "tx").unwrap();
    let method = hidden_input(step, "method").unwrap();
    let oob = hidden_input(step, "oob_code").unwrap_or_default();
    post_form(
        s,
        browser,
        "/login/mfa/verify",
        &[
            ("tx", &tx),
            ("method", &method),
            ("code", code),
            ("oob_code", &oob),
        ],
    )
    .await
}

/// `ui_locales=fr`: the login page, the wrong password's answer, the second
/// step and its wrong code all speak French, with `lang="fr"`, though the
/// browser asks for nothing (the language is kept with the login); the
/// login then completes.
#[tokio::test]
async fn ui_locales_is_kept_for_every_page_of_the_login() {
    let (s, enrolled) = server_with(ALWAYS).await;
    let browser = s.browser();
    let req = AuthRequest::new("openid").param("ui_locales", "it fr-CA en");
    let login = page(
        browser.get(req.url(&s)).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(lang(&login), "fr", "{login}");
    assert!(login.contains("<h1>Se connecter à acme</h1>"), "{login}");
    assert!(login.contains(">Mot de passe</label>"), "{login}");
    assert!(login.contains(">Continuer</button>"), "{login}");

    let wrong = page(
        password(&s, &browser, &login, ALICE, "not-her-password").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(lang(&wrong), "fr");
    assert!(
        wrong.contains(">Adresse e-mail ou mot de passe incorrect.</p>"),
        "{wrong}"
    );

    let step = page(
        password(&s, &browser, &wrong, ALICE, ALICE_PASSWORD).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(lang(&step), "fr");
    assert!(step.contains("<h1>Confirmez votre identité</h1>"), "{step}");
    assert!(
        step.contains("Saisissez le code à 6 chiffres de votre application d'authentification"),
        "{step}"
    );
    assert!(step.contains("Ce n'est pas vous ?"), "{step}");
    let right = totp_now(&enrolled.totp_secret, s.clock_now());
    let again = page(
        verify(&s, &browser, &step, &wrong_code(&right)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(lang(&again), "fr");
    assert!(
        again.contains("Ce code est incorrect. Il vous reste 4 tentatives."),
        "{again}"
    );

    let done = verify(&s, &browser, &again, &right).await;
    assert_eq!(done.status(), StatusCode::FOUND);
    let location = done.headers()["location"].to_str().unwrap().to_string();
    assert!(query_param(&location, "code").is_some(), "{location}");

    // Without the parameter the same browser is answered in English.
    let english = page(
        browser
            .get(AuthRequest::new("openid").param("prompt", "login").url(&s))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(lang(&english), "en");
    assert!(english.contains("<h1>Log in to acme</h1>"), "{english}");
}

/// `Accept-Language` chooses when the request has no `ui_locales`, on the
/// login page and on the pages that have no login behind them (an expired
/// form); a language latchkey does not speak falls to the tenant's default.
#[tokio::test]
async fn accept_language_chooses_without_ui_locales() {
    let s = TestServer::start().await;
    let req = AuthRequest::new("openid");
    let get = |accept: &'static str| {
        let browser = s.browser();
        let url = req.url(&s);
        async move {
            let res = browser
                .get(url)
                .header("accept-language", accept)
                .send()
                .await
                .unwrap();
            page(res, StatusCode::OK).await
        }
    };
    let french = get("fr-FR,fr;q=0.9,en;q=0.5").await;
    assert_eq!(lang(&french), "fr");
    assert!(french.contains("Adresse e-mail"), "{french}");
    // Weights count, not the order.
    let weighted = get("en;q=0.4, fr;q=0.8").await;
    assert_eq!(lang(&weighted), "fr");
    // The six languages, each by its own words; Portuguese of any region
    // is Brazil's.
    for (accept, tag, words) in [
        ("de-DE,de;q=0.9", "de", "E-Mail-Adresse"),
        ("es-MX", "es", "Correo electrónico"),
        ("ja", "ja", "メールアドレス"),
        ("pt-PT,pt;q=0.9", "pt-BR", "Endereço de e-mail"),
        ("pt-BR", "pt-BR", "Endereço de e-mail"),
    ] {
        let html = get(accept).await;
        assert_eq!(lang(&html), tag, "{accept}");
        assert!(html.contains(words), "{accept}: {html}");
    }
    let unknown = get("it-IT,it;q=0.9").await;
    assert_eq!(lang(&unknown), "en");
    assert!(unknown.contains("Email address"), "{unknown}");

    // ui_locales wins over the browser.
    let res = s
        .browser()
        .get(AuthRequest::new("openid").param("ui_locales", "en").url(&s))
        .header("accept-language", "fr")
        .send()
        .await
        .unwrap();
    assert_eq!(lang(&page(res, StatusCode::OK).await), "en");

    // An error page without a login.
    let res = s
        .browser()
        .post(s.url("/login"))
        .header("accept-language", "fr-CA")
        .form(&[("tx", "nope"), ("username", ALICE), ("password", "x")])
        .send()
        .await
        .unwrap();
    let expired = page(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(lang(&expired), "fr");
    assert!(
        expired.contains("Votre page de connexion a expiré."),
        "{expired}"
    );
}

/// A tenant's `enabled_locales`: its first is the default, a language it
/// does not list is never chosen.
#[tokio::test]
async fn the_tenant_offers_its_languages_and_defaults_to_the_first() {
    let s = TestServer::start().await;
    apply(
        &s,
        &acme(s.port).replace(
            "tenant: { name: acme, domains: [\"localhost",
            "tenant: { name: acme, enabled_locales: [fr, en], domains: [\"localhost",
        ),
    )
    .await;
    let open = |ui_locales: Option<&str>, accept: &'static str| {
        let mut req = AuthRequest::new("openid");
        if let Some(u) = ui_locales {
            req = req.param("ui_locales", u);
        }
        let browser = s.browser();
        let url = req.url(&s);
        async move {
            let res = browser
                .get(url)
                .header("accept-language", accept)
                .send()
                .await
                .unwrap();
            lang(&page(res, StatusCode::OK).await).to_string()
        }
    };
    assert_eq!(open(None, "").await, "fr");
    assert_eq!(open(None, "it").await, "fr");
    assert_eq!(open(None, "en-GB").await, "en");
    assert_eq!(open(Some("en"), "fr").await, "en");

    apply(
        &s,
        &acme(s.port).replace(
            "tenant: { name: acme, domains: [\"localhost",
            "tenant: { name: acme, enabled_locales: [en], domains: [\"localhost",
        ),
    )
    .await;
    assert_eq!(open(Some("fr"), "fr").await, "en");
}

/// The tenant's custom text is shown over the bundle for its language, its
/// placeholders filled, escaped like any text; other languages keep theirs.
#[tokio::test]
async fn custom_text_is_shown_escaped() {
    let s = TestServer::start().await;
    apply(
        &s,
        &format!(
            "{}prompts:\n  custom_text:\n    fr:\n      login:\n        login:\n          title: \"<b>Bienvenue</b> chez ${{companyName}}\"\n          buttonText: Entrer\n",
            acme(s.port)
        ),
    )
    .await;
    let res = s
        .browser()
        .get(AuthRequest::new("openid").param("ui_locales", "fr").url(&s))
        .send()
        .await
        .unwrap();
    let raw = res.text().await.unwrap();
    assert!(
        raw.contains("<h1>&lt;b&gt;Bienvenue&lt;&#x2f;b&gt; chez acme</h1>"),
        "{raw}"
    );
    assert!(!raw.contains("<b>"), "{raw}");
    assert!(raw.contains(">Entrer</button>"), "{raw}");
    assert!(raw.contains(">Mot de passe</label>"), "{raw}");

    let res = s
        .browser()
        .get(AuthRequest::new("openid").param("ui_locales", "en").url(&s))
        .send()
        .await
        .unwrap();
    let english = page(res, StatusCode::OK).await;
    assert!(english.contains("<h1>Log in to acme</h1>"), "{english}");
}

/// `latchkey tenant apply` refuses custom text for a key, screen, prompt or
/// language the bundles do not have, naming its path and line, and applies
/// nothing.
#[tokio::test]
async fn custom_text_outside_the_bundles_is_refused_by_tenant_apply() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_args().await;
    let file = dir.path().join("tenant.yaml");
    let apply = |text: &str| {
        std::fs::write(&file, text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(["tenant", "apply"])
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(&db)
            .output()
            .unwrap()
    };
    let head = "tenant: { name: acme, domains: [\"login.acme.test\"] }\nprompts:\n  custom_text:\n";
    for (body, path) in [
        (
            "    fr:\n      login:\n        login:\n          titel: Bienvenue\n",
            "prompts.custom_text.fr.login.login.titel",
        ),
        (
            "    fr:\n      login:\n        signin:\n          title: Bienvenue\n",
            "prompts.custom_text.fr.login.signin",
        ),
        (
            "    fr:\n      logon:\n        login:\n          title: Bienvenue\n",
            "prompts.custom_text.fr.logon",
        ),
        (
            "    xx:\n      login:\n        login:\n          title: Bienvenue\n",
            "prompts.custom_text.xx",
        ),
    ] {
        let out = apply(&format!("{head}{body}"));
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(path), "{path}: {err}");
        assert!(err.contains("line "), "{err}");
    }
    let out = apply(&format!(
        "{head}    fr:\n      login:\n        login:\n          title: Bienvenue\n"
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A code sent during a login asked for in French is a French email (the
/// language chosen as the pages choose it); the tenant's own template for a
/// language still wins.
#[tokio::test]
async fn a_code_email_speaks_the_language_of_the_login() {
    let mail = SmtpServer::start_with_auth("latchkey", SMTP_PASSWORD).await;
    let (s, _) = server_with("").await;
    let with = |messages: &str| {
        tenant(s.port, "")
            .replace(
                "factors: [password, totp, recovery-code]",
                "factors: [password, totp, recovery-code, email]",
            )
            .replace("require_2fa: false", "require_2fa: true")
            .replace(
                "  - { email: bob@example.com",
                &format!(
                    "  - {{ email: {CAROL}, password: \"{CAROL_PASSWORD}\", connection: Username-Password-Authentication, \
                     user_id: \"auth0|carol\", email_verified: true }}\n  - {{ email: bob@example.com"
                ),
            )
            + &format!(
                "email_provider: {{ smtp: {{ host: 127.0.0.1, port: {}, security: none, from: no-reply@acme.test, \
                 username: latchkey, password_env: SMTP_PASSWORD }} }}\n{messages}",
                mail.port
            )
    };
    apply(&s, &with("")).await;
    let browser = s.browser();
    let req = AuthRequest::new("openid")
        .audience(&s.my_account_audience())
        .param("ui_locales", "fr");
    let res = login_through_page(&s, &browser, &req, CAROL, CAROL_PASSWORD).await;
    let step = page(res, StatusCode::OK).await;
    assert_eq!(lang(&step), "fr");
    assert!(
        step.contains("Recevoir un code par e-mail à c***@example.com"),
        "{step}"
    );
    let sent = mail.wait_for(1).await[0].clone();
    let code = six_digits(&sent.text());
    assert_eq!(
        sent.header("Subject").unwrap(),
        format!("{code} est votre code de vérification acme")
    );
    assert!(
        sent.text()
            .starts_with(&format!("Votre code de vérification est {code}.")),
        "{}",
        sent.text()
    );
    assert!(
        sent.text().contains("terminer votre connexion"),
        "{}",
        sent.text()
    );
    assert!(
        sent.html().contains("<html lang=\"fr\">"),
        "{}",
        sent.html()
    );
    let done = verify(&s, &browser, &step, &code).await;
    assert_eq!(done.status(), StatusCode::FOUND);

    // The tenant's template for French wins over the bundle.
    apply(
        &s,
        &with(
            "messages:\n  code_email:\n    fr: { subject: \"Code {{ code }}\", text: \"Voici {{ code }}\", html: \"<p>{{ code }}</p>\" }\n",
        ),
    )
    .await;
    let browser = s.browser();
    let res = login_through_page(&s, &browser, &req, CAROL, CAROL_PASSWORD).await;
    page(res, StatusCode::OK).await;
    let sent = mail.wait_for(2).await[1].clone();
    let code = six_digits(&sent.text());
    assert_eq!(sent.header("Subject").unwrap(), format!("Code {code}"));
}

/// The sign-up screen of a login asked for in French: its labels, links
/// and refusals (the policy's among them) in French, `lang="fr"`, though
/// the browser asks for English; the login form it links back to says
/// "Forgot password?" and "Sign up" in French too.
#[tokio::test]
async fn the_signup_page_speaks_the_language_of_the_login() {
    let s = TestServer::start().await;
    let browser = s.browser();
    let req = AuthRequest::new("openid")
        .param("screen_hint", "signup")
        .param("ui_locales", "fr");
    let html = page(
        browser
            .get(req.url(&s))
            .header("accept-language", "en")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(lang(&html), "fr", "{html}");
    assert!(html.contains("<h1>Créer votre compte acme</h1>"), "{html}");
    assert!(html.contains(">Adresse e-mail</label>"), "{html}");
    assert!(html.contains(">Mot de passe</label>"), "{html}");
    assert!(html.contains(">Continuer</button>"), "{html}");
    assert!(
        html.contains("Vous avez déjà un compte ? <a href=\"/login/form?tx="),
        "{html}"
    );
    assert!(
        html.contains("id=\"login-link\">Se connecter</a>"),
        "{html}"
    );
    let tx = hidden_input(&html, "tx").unwrap();

    let signup = |email: &'static str, password: &'static str| {
        let (browser, url, tx) = (browser.clone(), s.url("/login/signup"), tx.clone());
        async move {
            let res = browser
                .post(url)
                .header("accept-language", "en")
                .form(&[
                    ("tx", tx.as_str()),
                    ("email", email),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap();
            page(res, StatusCode::OK).await
        }
    };
    let weak = signup("neu@example.com", "short").await;
    assert_eq!(lang(&weak), "fr");
    assert!(
        weak.contains(
            "id=\"signup-error\">Le mot de passe doit comporter au moins 8 caractères.</p>"
        ),
        "{weak}"
    );
    assert!(!weak.contains("The password"), "{weak}");
    let bad = signup("not-an-address", "Gl4ss-Onion-Lantern").await;
    assert!(
        bad.contains(">Veuillez saisir une adresse e-mail valide.</p>"),
        "{bad}"
    );
    // A taken address: the same refusal as any other, in French.
    let taken = signup(ALICE, "Gl4ss-Onion-Lantern").await;
    assert!(
        taken.contains(">Nous n'avons pas pu vous inscrire avec ces informations."),
        "{taken}"
    );

    let login = page(
        browser
            .get(s.url(&format!("/login/form?tx={tx}")))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(lang(&login), "fr");
    assert!(
        login.contains("id=\"forgot-password\">Mot de passe oublié ?</a>"),
        "{login}"
    );
    assert!(
        login.contains("Vous n'avez pas de compte ? <a href=\"/login/signup?tx="),
        "{login}"
    );
    assert!(
        login.contains("id=\"signup-link\">S'inscrire</a>"),
        "{login}"
    );
}

/// "Forgot password?" in German, by the browser's `Accept-Language`: the
/// form, a malformed address refused, and the notice that the email is
/// on its way with its button back to the login form.
#[tokio::test]
async fn forgot_password_and_its_notice_speak_the_browsers_language() {
    let (s, mail) = crate::signup::server("", "").await;
    let browser = s.browser();
    let german =
        |r: reqwest::RequestBuilder| r.header("accept-language", "de-DE,de;q=0.9,en;q=0.5");
    let login = page(
        german(browser.get(AuthRequest::new("openid").url(&s)))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(
        login.contains("id=\"forgot-password\">Passwort vergessen?</a>"),
        "{login}"
    );
    assert!(login.contains("Noch kein Konto?"), "{login}");
    let tx = hidden_input(&login, "tx").unwrap();

    let form = page(
        german(browser.get(s.url(&format!("/login/forgot-password?tx={tx}"))))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(lang(&form), "de");
    assert!(form.contains("<h1>Passwort vergessen?</h1>"), "{form}");
    assert!(
        form.contains("Geben Sie Ihre E-Mail-Adresse ein. Wir senden Ihnen dann einen Link"),
        "{form}"
    );
    assert!(form.contains(">E-Mail-Adresse</label>"), "{form}");
    assert!(form.contains(">Weiter</button>"), "{form}");
    assert!(
        form.contains("id=\"login-link\">Zurück zur Anmeldung</a>"),
        "{form}"
    );

    let bad = page(
        german(browser.post(s.url("/login/forgot-password")))
            .form(&[("tx", tx.as_str()), ("email", "not an address")])
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(lang(&bad), "de");
    assert!(
        bad.contains("id=\"forgot-error\">Bitte geben Sie eine gültige E-Mail-Adresse ein.</p>"),
        "{bad}"
    );

    let notice = page(
        german(browser.post(s.url("/login/forgot-password")))
            .form(&[("tx", tx.as_str()), ("email", ALICE)])
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(lang(&notice), "de");
    assert!(
        notice.contains("<h1>Prüfen Sie Ihr Postfach</h1>"),
        "{notice}"
    );
    assert!(
        notice.contains(
            "id=\"notice\">Wir haben Ihnen soeben eine E-Mail zum Zurücksetzen Ihres Passworts gesendet.</p>"
        ),
        "{notice}"
    );
    assert!(
        notice.contains("class=\"secondary\">Zurück zur Anmeldung</button>"),
        "{notice}"
    );
    assert_eq!(mail.wait_for(1).await.len(), 1);
}

/// A reset link asked for in French, followed after its hour: the page
/// that says so is French (its own title, Auth0's "link expired" screen)
/// though the browser that opens it asks for nothing, the link carrying
/// the mail's language; a mangled link says it is not valid, in the French
/// of a French browser.
#[tokio::test]
async fn a_dead_links_page_speaks_french() {
    let (s, mail) = crate::signup::server("", "").await;
    let res = s
        .http()
        .post(s.url("/dbconnections/change_password"))
        .header("accept-language", "fr-FR,fr;q=0.9")
        .json(&serde_json::json!({
            "client_id": "spa", "connection": crate::signup::UPA, "email": ALICE
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let link = crate::signup::link_in(&mail.wait_for(1).await[0]);
    s.clock.advance(3600);
    let open = |url: String| {
        let http = s.http();
        async move {
            let res = http
                .get(url)
                .header("accept-language", "fr-FR,fr;q=0.9")
                .send()
                .await
                .unwrap();
            page(res, StatusCode::BAD_REQUEST).await
        }
    };
    assert!(link.ends_with("&ui_locales=fr"), "{link}");
    let res = s.http().get(&link).send().await.unwrap();
    let expired = page(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(lang(&expired), "fr", "{expired}");
    assert!(expired.contains("<h1>Lien expiré</h1>"), "{expired}");
    assert!(
        expired
            .contains("role=\"alert\" id=\"notice\">Ce lien a expiré. Demandez-en un nouveau.</p>"),
        "{expired}"
    );
    let mangled = open(s.url("/u/reset-password?ticket=abc")).await;
    assert!(mangled.contains("<h1>Lien non valide</h1>"), "{mangled}");
    assert!(mangled.contains("Ce lien n'est pas valide."), "{mangled}");
    let verification = open(s.url("/u/email-verification?ticket=abc")).await;
    assert!(
        verification.contains("<h1>Ce lien ne fonctionne pas</h1>"),
        "{verification}"
    );
}

/// A tenant's custom text for a key of the new screens (the sign-up
/// screen's title) is shown for its language, placeholders filled.
#[tokio::test]
async fn custom_text_overrides_the_signup_title() {
    let s = TestServer::start().await;
    apply(
        &s,
        &format!(
            "{}prompts:\n  custom_text:\n    fr:\n      signup:\n        signup:\n          title: \"Rejoignez ${{companyName}}\"\n",
            acme(s.port)
        ),
    )
    .await;
    let open = |ui_locales: &'static str| {
        let browser = s.browser();
        let url = AuthRequest::new("openid")
            .param("screen_hint", "signup")
            .param("ui_locales", ui_locales)
            .url(&s);
        async move { page(browser.get(url).send().await.unwrap(), StatusCode::OK).await }
    };
    let fr = open("fr").await;
    assert!(fr.contains("<h1>Rejoignez acme</h1>"), "{fr}");
    assert!(fr.contains(">Mot de passe</label>"), "{fr}");
    let de = open("de").await;
    assert!(de.contains("<h1>Bei acme registrieren</h1>"), "{de}");
}

/// The reset email of a caller asking in Japanese (`Accept-Language`, as
/// auth0-js's `changePassword` sends it): its subject, text and HTML in
/// Japanese, the link intact; the page it opens speaks Japanese though the
/// browser asks for French, and so do its refusal and its success. A
/// language latchkey does not speak gets the tenant's default, and the
/// link then leaves the page to the browser's language.
#[tokio::test]
async fn the_reset_email_and_its_page_speak_the_callers_language() {
    let (s, mail) = crate::signup::server("", "").await;
    let ask = |accept: &'static str| {
        let (http, url) = (s.http(), s.url("/dbconnections/change_password"));
        async move {
            let res = http
                .post(url)
                .header("accept-language", accept)
                .json(&serde_json::json!({
                    "client_id": "spa", "connection": crate::signup::UPA, "email": ALICE
                }))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
        }
    };
    ask("ja-JP,ja;q=0.9").await;
    let sent = mail.wait_for(1).await[0].clone();
    assert_eq!(sent.header("Subject").unwrap(), "acme のパスワードの再設定");
    let text = sent.text();
    assert!(
        text.starts_with("acme アカウントのパスワード再設定のリクエストを受け付けました。\n\n新しいパスワードを設定するには、次のリンクを開いてください:\n\n"),
        "{text}"
    );
    assert!(
        text.contains("このリンクは 1 時間有効で、1 回だけ使用できます。心当たりがない場合は"),
        "{text}"
    );
    let link = crate::signup::link_in(&sent);
    assert!(
        link.starts_with(&format!("{}u/reset-password?ticket=", s.issuer)),
        "{link}"
    );
    assert!(link.ends_with("&ui_locales=ja"), "{link}");
    let ticket = query_param(&link, "ticket").unwrap();
    assert_eq!(ticket.len(), 43, "{link}");
    let html = sent.html();
    assert!(html.contains("<html lang=\"ja\">"), "{html}");
    assert!(
        html.contains(&format!(
            "<a href=\"{}\">新しいパスワードを設定する</a>",
            link.replace('&', "&amp;")
        )),
        "{html}"
    );

    // Opened in a French browser: the mail's Japanese.
    let browser = s.browser();
    let french = |r: reqwest::RequestBuilder| r.header("accept-language", "fr");
    let form = page(
        french(browser.get(&link)).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(lang(&form), "ja", "{form}");
    assert!(form.contains("<h1>パスワードの変更</h1>"), "{form}");
    assert!(
        form.contains(&format!("{ALICE} の新しいパスワードを入力してください。")),
        "{form}"
    );
    assert!(form.contains(">新しいパスワード</label>"), "{form}");
    assert_eq!(hidden_input(&form, "ui_locales").as_deref(), Some("ja"));
    let submit = |password: &'static str, status: StatusCode| {
        let req = french(browser.post(s.url("/u/reset-password"))).form(&[
            ("ticket", ticket.as_str()),
            ("ui_locales", "ja"),
            ("password", password),
        ]);
        async move { page(req.send().await.unwrap(), status).await }
    };
    let weak = submit("short", StatusCode::BAD_REQUEST).await;
    assert_eq!(lang(&weak), "ja");
    assert!(
        weak.contains("id=\"reset-error\">パスワードは 8 文字以上にしてください。</p>"),
        "{weak}"
    );
    let done = submit("Gl4ss-Onion-Lantern", StatusCode::OK).await;
    assert_eq!(lang(&done), "ja");
    assert!(done.contains("<h1>パスワードを変更しました</h1>"), "{done}");

    // Italian is not spoken: English, and the page is the browser's.
    ask("it-IT").await;
    let sent = mail.wait_for(2).await[1].clone();
    assert_eq!(sent.header("Subject").unwrap(), "Reset your acme password");
    assert!(
        sent.text()
            .contains("It works once, for 1 hour. If you did not ask"),
        "{}",
        sent.text()
    );
    let link = crate::signup::link_in(&sent);
    assert!(!link.contains("ui_locales"), "{link}");
    let form = page(
        s.http()
            .get(&link)
            .header("accept-language", "de")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(lang(&form), "de");
    assert!(form.contains("<h1>Passwort ändern</h1>"), "{form}");
}

/// "Forgot password?" on a login asked for in Spanish mails the reset
/// link in Spanish, though the browser asks for English: the mail follows
/// the login's language as its pages do.
#[tokio::test]
async fn a_reset_asked_from_the_login_page_is_mailed_in_the_logins_language() {
    let (s, mail) = crate::signup::server("", "").await;
    let browser = s.browser();
    let english = |r: reqwest::RequestBuilder| r.header("accept-language", "en");
    let req = AuthRequest::new("openid").param("ui_locales", "es");
    let login = page(
        english(browser.get(req.url(&s))).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(
        login.contains(">¿Has olvidado tu contraseña?</a>"),
        "{login}"
    );
    let tx = hidden_input(&login, "tx").unwrap();
    let notice = page(
        english(browser.post(s.url("/login/forgot-password")))
            .form(&[("tx", tx.as_str()), ("email", ALICE)])
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(notice.contains("<h1>Revisa tu correo</h1>"), "{notice}");
    let sent = mail.wait_for(1).await[0].clone();
    assert_eq!(
        sent.header("Subject").unwrap(),
        "Restablece tu contraseña de acme"
    );
    assert!(
        sent.text()
            .starts_with("Alguien ha pedido restablecer la contraseña de tu cuenta de acme."),
        "{}",
        sent.text()
    );
    assert!(
        sent.text()
            .contains("Solo funciona una vez, durante 1 hora."),
        "{}",
        sent.text()
    );
    assert!(crate::signup::link_in(&sent).ends_with("&ui_locales=es"));
}

/// The verification email of a sign-up in Brazilian Portuguese: subject,
/// text and HTML, five days said as days; the link it carries verifies,
/// and its page speaks Portuguese to a browser that asks for nothing.
#[tokio::test]
async fn the_verification_email_speaks_brazilian_portuguese() {
    let (s, mail) = crate::signup::server("", "").await;
    let res = s
        .http()
        .post(s.url("/dbconnections/signup"))
        .header("accept-language", "pt-BR,pt;q=0.9,en;q=0.5")
        .json(&serde_json::json!({
            "client_id": "spa", "connection": crate::signup::UPA,
            "email": "nova@example.com", "password": crate::signup::NEW_PASSWORD
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let sent = mail.wait_for(1).await[0].clone();
    assert_eq!(sent.to, vec!["nova@example.com".to_string()]);
    assert_eq!(
        sent.header("Subject").unwrap(),
        "Confirme seu e-mail em acme"
    );
    let text = sent.text();
    assert!(
        text.starts_with(
            "Boas-vindas a acme.\n\nPara confirmar seu endereço de e-mail, abra este link:\n\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("Ele funciona uma única vez, por 5 dias. Se você não criou uma conta"),
        "{text}"
    );
    let html = sent.html();
    assert!(html.contains("<html lang=\"pt-BR\">"), "{html}");
    assert!(html.contains(">Confirmar meu e-mail</a>"), "{html}");
    let link = crate::signup::link_in(&sent);
    assert!(
        link.starts_with(&format!("{}u/email-verification?ticket=", s.issuer)),
        "{link}"
    );
    assert!(link.ends_with("&ui_locales=pt-BR"), "{link}");
    let verified = page(s.http().get(&link).send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(lang(&verified), "pt-BR", "{verified}");
    assert!(
        verified.contains("<h1>E-mail confirmado</h1>"),
        "{verified}"
    );
    assert!(
        verified.contains("Seu endereço de e-mail foi confirmado."),
        "{verified}"
    );
    // Followed again: used, in Portuguese.
    let again = page(
        s.http().get(&link).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(again.contains("Este link já foi usado."), "{again}");
}
