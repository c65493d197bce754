//! First start: a default team and a one-time setup link (its first member's invite), printed
//! once beside the admin token, so `cargo run` leads to a signed-in dashboard in one click.

use std::net::SocketAddr;

use shipwatch_service::members::MemberService;
use shipwatch_service::teams::TeamService;

/// The link's host: a wildcard listen address is reached on loopback.
fn dashboard_base(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => "127.0.0.1".to_owned(),
            SocketAddr::V6(_) => "[::1]".to_owned(),
        }
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}", addr.port())
}

pub struct Setup {
    pub dashboard: String,
    pub setup_link: String,
    pub team_token: String,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("dashboard", &self.dashboard)
            .finish_non_exhaustive()
    }
}

/// Creates the default team and its first invite.
pub async fn setup(
    teams: &TeamService,
    members: &MemberService,
    addr: SocketAddr,
) -> Result<Setup, Box<dyn std::error::Error>> {
    let created = teams.create("My team").await?;
    let invite = members.invite(&created.team.id, None).await?;
    let dashboard = dashboard_base(addr);
    Ok(Setup {
        setup_link: format!("{dashboard}/invite/{}", invite.token),
        dashboard,
        team_token: created.token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_link_to_loopback() {
        let v4: SocketAddr = "0.0.0.0:8080".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(dashboard_base(v4), "http://127.0.0.1:8080");
        let v6: SocketAddr = "[::]:8080".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(dashboard_base(v6), "http://[::1]:8080");
        let local: SocketAddr = "127.0.0.1:3000".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(dashboard_base(local), "http://127.0.0.1:3000");
    }
}
