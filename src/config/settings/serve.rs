//! `[proxy]` and `[reload]`: hotrun's front for the app and the browser reload
//! socket.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Result};

use super::read::{address_value, file_duration, Input};
use crate::config::values::parse_address;

pub const DEFAULT_RELOAD_LISTEN: &str = "127.0.0.1:35729";

#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub listen: SocketAddr,
    pub app: Option<SocketAddr>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ReloadSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub hosts: Vec<String>,
    pub origins: Vec<String>,
}

/// `proxy.timeout`, set or not (checked even without a proxy).
pub fn proxy_timeout(input: &Input) -> Result<Duration> {
    Ok(file_duration(
        input.file,
        "proxy.timeout",
        &input.file.config.proxy.timeout,
    )?
    .unwrap_or(Duration::from_secs(30)))
}

/// `[proxy]` and `--proxy`, `--app`: none when there is no `proxy.listen`.
pub fn proxy(input: &Input) -> Result<Option<ProxySettings>> {
    let (cli, file) = (input.cli, input.file);
    let proxy_timeout = proxy_timeout(input)?;
    let p = &file.config.proxy;
    let proxy_listen = match (&cli.serve.proxy, &p.listen) {
        (Some(text), _) => Some(parse_address(text).map_err(|e| anyhow!("--proxy: {e}"))?),
        (None, Some(a)) => Some(
            address_value(a.get_ref()).map_err(|e| file.error_at(a.span(), "proxy.listen", &e))?,
        ),
        (None, None) => None,
    };
    let proxy_app = match (&cli.serve.app, &p.app) {
        (Some(text), _) => Some(parse_address(text).map_err(|e| anyhow!("--app: {e}"))?),
        (None, Some(a)) => {
            Some(address_value(a.get_ref()).map_err(|e| file.error_at(a.span(), "proxy.app", &e))?)
        }
        (None, None) => None,
    };
    if proxy_app.is_some() && proxy_listen.is_none() {
        let span = p.app.as_ref().map(|a| a.span()).unwrap_or(0..0);
        return Err(file.error_at(
            span,
            "proxy.app",
            "needs `proxy.listen` (or --proxy) as well",
        ));
    }
    Ok(proxy_listen.map(|listen| ProxySettings {
        listen,
        app: proxy_app,
        timeout: proxy_timeout,
    }))
}

/// `[reload]` and `--no-reload`.
pub fn reload(input: &Input) -> Result<ReloadSettings> {
    let (cli, file) = (input.cli, input.file);
    let rl = &file.config.reload;
    let reload_listen = match &rl.listen {
        Some(a) => {
            address_value(a.get_ref()).map_err(|e| file.error_at(a.span(), "reload.listen", &e))?
        }
        None => parse_address(DEFAULT_RELOAD_LISTEN).expect("the default address parses"),
    };
    Ok(ReloadSettings {
        enabled: !cli.serve.no_reload && rl.enabled.unwrap_or(true),
        listen: reload_listen,
        hosts: rl.hosts.clone().unwrap_or_default(),
        origins: rl.origins.clone().unwrap_or_default(),
    })
}
