//! A signed-in dashboard member over plain HTTP (no browser): joins through an invite link with
//! the form cookie and token as a browser sends them, then reads pages and posts forms with the
//! session cookie and the CSRF token the pages carry.

use serde_json::{Value, json};

use crate::app::TestApp;

pub struct DashboardMember {
    pub client: reqwest::Client,
    base_url: String,
    cookie: String,
}

/// The first cookie pair (`name=value`) a response sets.
fn set_cookie_pair(response: &reqwest::Response) -> String {
    response.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned()
}

/// The value of the first `name="csrf"` hidden input of a page.
pub fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
    let end = page[start..].find('"').expect("closing quote") + start;
    page[start..end].to_owned()
}

impl DashboardMember {
    /// A new team (via `POST /v1/teams`) and its first member, signed in: the team's JSON and them.
    pub async fn new_team(app: &TestApp, name: &str, member: &str) -> (Value, Self) {
        let response = app
            .http
            .post(app.url("/v1/teams"))
            .bearer_auth(&app.admin_token)
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("POST /v1/teams");
        assert_eq!(response.status(), 201);
        let team: Value = response.json().await.expect("team JSON");
        let invite_url = team["invite_url"].as_str().expect("invite_url").to_owned();
        let member = Self::join(app, &invite_url, member).await;
        (team, member)
    }

    /// Accepts the invite as `name` (email `<name>@example.com`) and keeps the session cookie.
    /// The link is followed on the test app's address: under `SHIPWATCH_PUBLIC_URL` it names the
    /// public host, which reaches the same server in a deployment.
    pub async fn join(app: &TestApp, invite_url: &str, name: &str) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let link = url::Url::parse(invite_url).expect("an absolute invite link");
        let invite_url = &app.url(link.path());
        let form = client.get(invite_url).send().await.expect("GET invite");
        let form_cookie = set_cookie_pair(&form);
        let token = form_cookie
            .split_once('=')
            .expect("name=value")
            .1
            .to_owned();
        let email = format!("{}-{}%40example.com", name, uuid::Uuid::new_v4().simple());
        let joined = client
            .post(invite_url)
            .header("cookie", &form_cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "name={name}&email={email}&password=correct+horse+battery&csrf={token}"
            ))
            .send()
            .await
            .expect("POST invite");
        assert_eq!(joined.status(), 303, "joining through the invite");
        Self {
            cookie: set_cookie_pair(&joined),
            client,
            base_url: app.base_url.clone(),
        }
    }

    /// A page: its status and HTML.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .header("cookie", &self.cookie)
            .header("accept", "text/html")
            .send()
            .await
            .expect("GET page");
        let status = response.status().as_u16();
        (status, response.text().await.expect("page text"))
    }

    /// The CSRF token the session's forms carry (read from `/team`).
    pub async fn csrf(&self) -> String {
        let (status, page) = self.page("/team").await;
        assert_eq!(status, 200);
        csrf_of(&page)
    }

    /// Posts a form body (already url-encoded) as is: its status and HTML.
    pub async fn post(&self, path: &str, body: &str) -> (u16, String) {
        let response = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header("cookie", &self.cookie)
            .header("accept", "text/html")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .expect("POST form");
        let status = response.status().as_u16();
        (status, response.text().await.expect("page text"))
    }
}
