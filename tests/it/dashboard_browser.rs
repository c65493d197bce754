//! The dashboard in real headless Chromium (WebDriver, `shipwatch_tests::webdriver`) against the
//! app wired as `shipwatch-local` wires it and the fake App Store Connect: accept an invite, add a
//! `.p8` and watch it turn valid without a reload, a bad `.p8` named and nothing stored, a webhook
//! destination (secret shown once, URL not echoed, a test send), a workflow, two sweeps and the
//! event in the history with its delivery outcome, a POST
//! without its CSRF token refused, another team's key page a 404, sign-out ending the session on
//! the server. Screenshots (1280 and 390 px wide) go to `target/screenshots/`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shipwatch_shared::clock::SystemClock;
use shipwatch_tests::app::{Backend, TestApp, fresh_stores};
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc, FakeVersion};
use shipwatch_tests::fake_google_play::{FakeGooglePlay, KEY_A};
use shipwatch_tests::receiver::Receiver;
use shipwatch_tests::test_keys::{TestKey, binary_garbage};
use shipwatch_tests::webdriver::Driver;

async fn new_team(app: &TestApp, name: &str) -> Value {
    let response = app
        .http
        .post(app.url("/v1/teams"))
        .bearer_auth(&app.admin_token)
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("POST /v1/teams");
    assert_eq!(response.status(), 201);
    response.json().await.expect("team JSON")
}

/// A client that sends the browser's session cookie, following no redirects.
fn with_cookie(cookie: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::COOKIE,
        format!("sw_session={cookie}")
            .parse()
            .expect("cookie header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn shoot(browser: &shipwatch_tests::webdriver::Browser, name: &str) {
    browser.set_window_width(1280).await;
    browser.screenshot(&format!("{name}-desktop")).await;
    browser.set_window_width(390).await;
    browser.screenshot(&format!("{name}-phone")).await;
    browser.set_window_width(1280).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_key_destination_workflow_sweep_history_and_the_guards() {
    let asc = FakeAsc::start().await;
    let app = TestApp::start(Backend::Embedded, &asc.base_url()).await;
    let team = new_team(&app, "Acme").await;
    let invite_url = team["invite_url"].as_str().expect("invite_url").to_owned();
    assert!(
        invite_url.starts_with(&format!("{}/invite/", app.base_url)),
        "{invite_url}"
    );
    let team_token = team["token"].as_str().expect("token").to_owned();

    let key = TestKey::generate();
    asc.register_key(&key);
    let receiver = Receiver::start().await.expect("receiver");
    asc.add_app(
        &key.issuer_id,
        FakeApp::new("1000000001", "Hello", "com.example.hello"),
    );
    asc.add_version(FakeVersion::new(
        "v-1",
        "1000000001",
        "1.0",
        "IOS",
        "PREPARE_FOR_SUBMISSION",
    ));
    let files = tempfile::tempdir().expect("temp dir");
    let p8 = files
        .path()
        .join(format!("AuthKey_{}.p8", key.key_id.as_str()));
    std::fs::write(&p8, &key.pem).expect("p8 written");
    let bad = files.path().join("AuthKey_BADBADBAD1.p8");
    std::fs::write(&bad, binary_garbage()).expect("bad file written");

    let driver = Driver::connect().await;
    let browser = driver.session().await;

    // Invite -> account -> signed in on the overview.
    browser.goto(&invite_url).await;
    shoot(&browser, "invite").await;
    browser.type_into("#name", "Ana Lima").await;
    browser.type_into("#email", "ana@example.com").await;
    browser.type_into("#password", "short").await;
    browser.click("main button[type=submit]").await;
    assert_eq!(
        browser.text("#password-error").await,
        "Use at least 12 characters."
    );
    browser
        .type_into("#password", "correct horse battery")
        .await;
    browser.click("main button[type=submit]").await;
    let home = app.url("/");
    assert_eq!(browser.wait_for_url(|u| u == home).await, home);
    assert!(browser.page_source().await.contains("Welcome, Ana Lima"));
    assert_eq!(
        browser.count("form[action='/logout'] button").await,
        1,
        "Sign out is there"
    );
    shoot(&browser, "overview-empty").await;
    // The invite was for one use.
    browser.goto(&invite_url).await;
    assert_eq!(browser.text("h1").await, "Invite link not usable");

    // Add API Key: the Key ID comes from the file name; the page turns "Valid" by itself.
    browser.goto(&app.url("/keys/new")).await;
    shoot(&browser, "add-key").await;
    browser
        .type_into("#private_key", &p8.to_string_lossy())
        .await;
    browser
        .type_into("#issuer_id", key.issuer_id.as_str())
        .await;
    browser.type_into("#name", "CI key").await;
    browser.click("main button[type=submit]").await;
    let key_pages = app.url("/keys/");
    let key_page = browser
        .wait_for_url(|u| u.starts_with(&key_pages) && !u.ends_with("/new"))
        .await;
    assert!(key_page.starts_with(&key_pages), "{key_page}");
    let status = browser
        .wait_for_text("#key-status", "Valid", Duration::from_secs(20))
        .await;
    assert_eq!(status, "Valid");
    assert!(browser.text("#status-message").await.contains("1 app"));
    let source = browser.page_source().await;
    for line in key.pem_body_lines() {
        assert!(
            !source.contains(&line),
            "the key page shows no key material"
        );
    }
    shoot(&browser, "key-valid").await;

    // A bad .p8: its reason next to the file field, nothing stored.
    browser.goto(&app.url("/keys/new")).await;
    browser
        .type_into("#private_key", &bad.to_string_lossy())
        .await;
    browser
        .type_into("#issuer_id", key.issuer_id.as_str())
        .await;
    browser.click("main button[type=submit]").await;
    let reason = browser.text("#private_key-error").await;
    assert!(
        !reason.is_empty(),
        "a reason is shown next to the file field"
    );
    assert_eq!(browser.count("#issuer_id-error").await, 0);
    shoot(&browser, "add-key-error").await;
    let (_, listed) = app.get(&team_token, "/v1/keys").await;
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(1), "{listed}");

    browser.goto(&app.url("/keys")).await;
    shoot(&browser, "keys").await;
    browser.goto(&app.url("/team")).await;
    shoot(&browser, "team").await;

    // A signed webhook destination: the signing secret shown once, the URL never shown back;
    // a test send reports its outcome.
    browser.goto(&app.url("/destinations")).await;
    browser.click("#type option[value=webhook]").await;
    browser.type_into("#name", "Release hook").await;
    let hook_url = format!("{}/hooks/shipwatch-secret-path", receiver.url());
    browser.type_into("#url", &hook_url).await;
    browser
        .click("main form[action='/destinations'] button[type=submit]")
        .await;
    assert!(browser.text("#signing-secret").await.starts_with("whsec_"));
    assert!(
        !browser
            .page_source()
            .await
            .contains("shipwatch-secret-path"),
        "URL not echoed"
    );
    shoot(&browser, "destinations").await;
    browser.click("main form[action$='/test'] button").await;
    let outcome = browser.text("#test-outcome").await;
    assert!(outcome.starts_with("Test message delivered"), "{outcome}");
    assert_eq!(receiver.requests().len(), 1, "the test message arrived");

    // A workflow (all apps, all event types) to it.
    browser.goto(&app.url("/workflows")).await;
    browser.type_into("#name", "Everything").await;
    browser
        .click("main form[action='/workflows'] button[type=submit]")
        .await;
    assert_eq!(
        browser.text("#workflow-created").await,
        "Workflow Everything created."
    );
    shoot(&browser, "workflows").await;

    // A sweep (baseline), a change at Apple, a sweep: the event is in the history, delivered.
    let sweep = || async {
        let (status, report) = app
            .post_json(&app.admin_token, "/v1/sweeps", &json!({}))
            .await;
        assert_eq!(status, 200, "{report}");
    };
    sweep().await;
    asc.set_version_state("v-1", "WAITING_FOR_REVIEW");
    sweep().await;
    receiver
        .wait_for(2, Duration::from_secs(10))
        .await
        .expect("the event was delivered");
    browser.goto(&app.url("/history")).await;
    browser
        .click("#type option[value='shipwatch.app_version.state_changed']")
        .await;
    browser
        .click("main form[action='/history'] button[type=submit]")
        .await;
    assert_eq!(browser.wait_for_count("article.event", 1).await, 1);
    assert_eq!(browser.text("article.event .status").await, "Delivered");
    assert!(
        browser
            .text("article.event .delivery")
            .await
            .contains("Release hook")
    );
    shoot(&browser, "history").await;

    // The app's page draws its versions' states as an SVG timeline.
    browser.goto(&app.url("/")).await;
    browser.click("main a[href='/apps/1000000001']").await;
    assert!(browser.wait_for_count("svg.timeline rect", 1).await >= 1);
    assert!(browser.page_source().await.contains("WAITING_FOR_REVIEW"));
    assert_eq!(
        browser.text("#median-review").await,
        "no finished review yet"
    );
    shoot(&browser, "app-timeline").await;

    let session = browser.cookie("sw_session").await.expect("session cookie");
    let as_ana = with_cookie(&session);

    // A state-changing POST without its CSRF token is refused.
    let refused = as_ana
        .post(app.url("/team/invites"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), 403);
    let wrong = as_ana
        .post(app.url("/team/invites"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=not-the-token")
        .send()
        .await
        .expect("POST");
    assert_eq!(wrong.status(), 403);

    // Another team's key page is a 404 page.
    let other = new_team(&app, "Other").await;
    let other_key = TestKey::generate();
    let (status, created) = app
        .post_json(
            other["token"].as_str().expect("token"),
            "/v1/keys",
            &json!({ "private_key": other_key.pem, "issuer_id": other_key.issuer_id.as_str(),
                     "key_id": other_key.key_id.as_str() }),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let other_page = app.url(&format!("/keys/{}", created["id"].as_str().expect("id")));
    let answer = as_ana.get(&other_page).send().await.expect("GET");
    assert_eq!(answer.status(), 404);
    browser.goto(&other_page).await;
    assert_eq!(browser.text("h1").await, "Page not found");

    // Sign-out ends the session on the server: the old cookie no longer opens a page.
    browser.goto(&app.url("/")).await;
    browser.click("form[action='/logout'] button").await;
    let login = app.url("/login");
    assert_eq!(browser.wait_for_url(|u| u == login).await, login);
    shoot(&browser, "login").await;
    let after = as_ana.get(app.url("/")).send().await.expect("GET");
    assert_eq!(after.status(), 303, "redirected to sign in");
    assert_eq!(after.headers()["location"], "/login");

    // Sign in again with the password.
    browser.type_into("#email", "ana@example.com").await;
    browser
        .type_into("#password", "correct horse battery")
        .await;
    browser.click("main button[type=submit]").await;
    assert_eq!(browser.wait_for_url(|u| u == home).await, home);
    browser.close().await;

    // Nothing secret in the log lines: passwords, session tokens, the invite link, key material.
    let logs = shipwatch_tests::logs::captured();
    assert!(
        !logs.contains("correct horse battery"),
        "a password in the logs"
    );
    assert!(!logs.contains(&session), "a session token in the logs");
    assert!(
        !logs.contains(invite_url.rsplit('/').next().unwrap_or("-")),
        "an invite token in the logs"
    );
    for line in key.pem_body_lines() {
        assert!(!logs.contains(&line), "key material in the logs");
    }
}

/// Sign-in with a form cookie and its token, as a browser sends it.
async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let form = client
        .get(app.url("/login"))
        .send()
        .await
        .expect("GET /login");
    let cookie = form.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let token = cookie.split_once('=').expect("name=value").1.to_owned();
    client
        .post(app.url("/login"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email={email}&password={password}&csrf={token}"))
        .send()
        .await
        .expect("POST /login")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_csrf_guarded_throttled_after_failures_and_pages_carry_security_headers() {
    let asc = FakeAsc::start().await;
    let app = TestApp::start(Backend::Embedded, &asc.base_url()).await;
    let team = new_team(&app, "Acme").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // Join through the invite (form cookie + token), without a browser.
    let invite_url = team["invite_url"].as_str().expect("invite_url");
    let form = client.get(invite_url).send().await.expect("GET invite");
    let cookie = form.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let token = cookie.split_once('=').expect("name=value").1.to_owned();
    let joined = client
        .post(invite_url)
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "name=Ana&email=ana%40example.com&password=correct+horse+battery&csrf={token}"
        ))
        .send()
        .await
        .expect("POST invite");
    assert_eq!(joined.status(), 303);
    let set = joined.headers()["set-cookie"]
        .to_str()
        .expect("session cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    // A POST without the form token is refused.
    let forged = client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=ana%40example.com&password=correct+horse+battery")
        .send()
        .await
        .expect("POST /login");
    assert_eq!(forged.status(), 403);

    assert_eq!(
        sign_in(&app, &client, "ana%40example.com", "correct+horse+battery")
            .await
            .status(),
        303
    );
    for _ in 0..5 {
        assert_eq!(
            sign_in(&app, &client, "ana%40example.com", "wrong+password+1")
                .await
                .status(),
            401
        );
    }
    // Now even the right password waits.
    let throttled = sign_in(&app, &client, "ana%40example.com", "correct+horse+battery").await;
    assert_eq!(throttled.status(), 429);
    assert!(
        throttled
            .text()
            .await
            .expect("page")
            .contains("Too many failed sign-ins")
    );

    // Every page answer carries the security headers.
    let page = client.get(app.url("/login")).send().await.expect("GET");
    let headers = page.headers();
    let csp = headers["content-security-policy"].to_str().expect("csp");
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers.contains_key("referrer-policy"));
    // An unknown page is a 404 page, the API keeps its JSON.
    let missing = client
        .get(app.url("/nope"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);
    assert!(
        missing
            .text()
            .await
            .expect("page")
            .contains("Page not found")
    );
    let api = client.get(app.url("/v1/nope")).send().await.expect("GET");
    assert_eq!(api.status(), 404);
    assert_eq!(
        api.json::<Value>().await.expect("json")["error"]["code"],
        "not_found"
    );
}

/// The Add API Key form's Google Play choice, in the browser: a service-account file with a bad
/// package name is refused with the reason next to the package field and nothing stored; the
/// same file with good package names is validated against the fake Google Play and the key's
/// page turns "Valid" by itself, showing no key material.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_play_service_account_added_in_the_browser_turns_valid() {
    const EMAIL: &str = "shipwatch@acme-play.iam.gserviceaccount.com";
    let google = FakeGooglePlay::start().await;
    google.add_service_account(EMAIL, &KEY_A);
    google.add_app("com.example.hello", "Hello");
    google.grant("com.example.hello", EMAIL);
    let asc = FakeAsc::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = fresh_stores(Backend::Embedded, dir.path()).await;
    let settings = google.settings();
    let environment: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::start_with_settings(
        Backend::Embedded,
        stores,
        &asc.base_url(),
        dir,
        Arc::new(SystemClock),
        &environment,
    )
    .await;
    let team = new_team(&app, "Acme").await;
    let invite_url = team["invite_url"].as_str().expect("invite_url").to_owned();
    let team_token = team["token"].as_str().expect("token").to_owned();
    let files = tempfile::tempdir().expect("temp dir");
    let json_file = files.path().join("acme-play-5f1c0a3b9d2e.json");
    std::fs::write(&json_file, KEY_A.service_account_json(EMAIL).to_string())
        .expect("service account file written");

    let driver = Driver::connect().await;
    let browser = driver.session().await;
    browser.goto(&invite_url).await;
    browser.type_into("#name", "Ana Lima").await;
    browser.type_into("#email", "ana@example.com").await;
    browser
        .type_into("#password", "correct horse battery")
        .await;
    browser.click("main button[type=submit]").await;
    let home = app.url("/");
    assert_eq!(browser.wait_for_url(|u| u == home).await, home);

    // A bad package name: named next to its field, nothing stored.
    browser.goto(&app.url("/keys/new")).await;
    browser.click("#platform option[value=google_play]").await;
    browser
        .type_into("#service_account", &json_file.to_string_lossy())
        .await;
    browser.type_into("#package_names", "1com.example").await;
    browser.click("main button[type=submit]").await;
    let reason = browser.text("#package_names-error").await;
    assert!(!reason.is_empty(), "a reason next to the package names");
    assert_eq!(browser.count("#service_account-error").await, 0);
    let (_, listed) = app.get(&team_token, "/v1/keys").await;
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(0), "{listed}");

    // The same file with a good package name turns valid without a reload.
    browser.goto(&app.url("/keys/new")).await;
    browser.click("#platform option[value=google_play]").await;
    browser
        .type_into("#service_account", &json_file.to_string_lossy())
        .await;
    browser
        .type_into("#package_names", "com.example.hello")
        .await;
    browser.type_into("#name", "Android").await;
    browser.click("main button[type=submit]").await;
    let key_pages = app.url("/keys/");
    browser
        .wait_for_url(|u| u.starts_with(&key_pages) && !u.ends_with("/new"))
        .await;
    let status = browser
        .wait_for_text("#key-status", "Valid", Duration::from_secs(20))
        .await;
    assert_eq!(status, "Valid");
    let source = browser.page_source().await;
    assert!(source.contains("Google Play"), "the platform is shown");
    for line in KEY_A.pem_body_lines() {
        assert!(!source.contains(&line), "no key material on the page");
    }
    shoot(&browser, "key-valid-google-play").await;
    let (_, listed) = app.get(&team_token, "/v1/keys").await;
    assert_eq!(
        listed["keys"][0]["client_email"].as_str(),
        Some(EMAIL),
        "{listed}"
    );
    browser.close().await;
}
