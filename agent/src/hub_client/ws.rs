//! The WebSocket the hub pushes changes on (`/v1/ws`): opening it at the
//! hub in use with the token (over TLS for an `https://` hub) and reading
//! its frames, with a revoked token's close and a silent socket as errors.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header;
use sf_protocol::v1::{WS_CLOSE_REVOKED, WsFrame};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::error::{snippet, with_causes, ws_error, ws_timeout};
use super::tls::tls_failure;
use super::{HubClient, HubError};
use crate::credentials::TokenRefused;

/// Opening the WebSocket: TCP connect plus the upgrade handshake.
const WS_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The hub pings every 30 s; this much silence means the socket is dead.
const WS_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// An open `/v1/ws` socket.
pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl HubClient {
    /// `ws(s)://host[:port]/v1/ws` of the hub in use.
    #[cfg(test)]
    pub fn ws_url(&self) -> String {
        ws_url_for(self.base_url())
    }

    /// Opens `/v1/ws` at the hub in use (`wss://` with certificate
    /// verification for an `https://` hub), presenting the token. The first
    /// frame will be `hello`. A hub that does not answer is left for the
    /// next one given, where the caller's next attempt goes.
    pub async fn connect_ws(&self) -> Result<WsStream, HubError> {
        let (hub, base) = self.hubs.current();
        let opened = self.open_ws(base).await;
        match &opened {
            Ok(_) => self.hubs.answered(hub),
            Err(err) if err.means_hub_gone() => self.hubs.failed(hub, &with_causes(err)),
            Err(_) => {}
        }
        opened
    }

    async fn open_ws(&self, base: &str) -> Result<WsStream, HubError> {
        let url = ws_url_for(base);
        let connector = match &self.ws_tls {
            Some(config) if base.starts_with("https://") => Connector::Rustls(Arc::clone(config)),
            _ => Connector::Plain,
        };
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|err| self.ws_error(err))?;
        if let Some(auth) = &self.auth {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, auth.clone());
        }
        if let Some(name) = &self.agent_name {
            request.headers_mut().insert("x-sf-agent", name.clone());
        }
        let connect =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector));
        match tokio::time::timeout(WS_CONNECT_TIMEOUT, connect).await {
            Ok(Ok((ws, _response))) => Ok(ws),
            Ok(Err(err)) => Err(tls_failure(&err, &url).unwrap_or_else(|| self.ws_error(err))),
            Err(_) => Err(ws_timeout(format!(
                "opening {url} took longer than {WS_CONNECT_TIMEOUT:?}"
            ))),
        }
    }

    /// The next frame from the hub. Skips ping, pong and binary messages
    /// (pongs are sent automatically). `None` once the socket is closed; the
    /// close code and reason are logged. A socket silent for longer than
    /// [`WS_IDLE_TIMEOUT`] (the hub pings every 30 s) gives a retryable error;
    /// one the hub closes because the token was revoked gives
    /// [`HubError::Unauthorized`].
    pub async fn next_frame(&self, ws: &mut WsStream) -> Option<Result<WsFrame, HubError>> {
        loop {
            let message = match tokio::time::timeout(WS_IDLE_TIMEOUT, ws.next()).await {
                Err(_) => {
                    return Some(Err(ws_timeout(format!(
                        "the hub sent nothing for {WS_IDLE_TIMEOUT:?}"
                    ))));
                }
                Ok(None) => {
                    tracing::info!("hub WebSocket ended");
                    return None;
                }
                Ok(Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                ))) => {
                    tracing::info!("hub WebSocket closed");
                    return None;
                }
                Ok(Some(Err(err))) => return Some(Err(self.ws_error(err))),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    return Some(
                        sf_protocol::v1::decode_ws_frame(text.as_str()).map_err(|err| {
                            HubError::Protocol(format!(
                                "WebSocket frame is not a hub frame ({err}): {}",
                                snippet(text.as_bytes())
                            ))
                        }),
                    );
                }
                Message::Close(frame) => {
                    match frame {
                        Some(frame) if u16::from(frame.code) == WS_CLOSE_REVOKED => {
                            let reason = match frame.reason.as_str() {
                                "" => "token revoked",
                                reason => reason,
                            };
                            return Some(Err(HubError::Unauthorized(TokenRefused {
                                token: self.token_source.clone(),
                                detail: format!(
                                    "the hub closed the WebSocket with code \
                                     {WS_CLOSE_REVOKED}: {reason}"
                                ),
                            })));
                        }
                        Some(frame) => tracing::info!(
                            code = u16::from(frame.code),
                            reason = %frame.reason,
                            "hub closed the WebSocket"
                        ),
                        None => tracing::info!("hub closed the WebSocket without a code"),
                    }
                    return None;
                }
                Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// A failed WebSocket upgrade or session as a [`HubError`].
    fn ws_error(&self, err: tungstenite::Error) -> HubError {
        match err {
            // The upgrade was refused with an HTTP answer, e.g. `401 unauthorized`.
            tungstenite::Error::Http(response) => {
                let status = response.status();
                self.token_refused(status, response.body().as_deref().unwrap_or_default())
            }
            other => ws_error(other),
        }
    }
}

/// `http://…` → `ws://…/v1/ws`, `https://…` → `wss://…/v1/ws`.
pub(super) fn ws_url_for(base: &str) -> String {
    let rest = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            base.strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or_else(|| base.to_owned());
    format!("{rest}/v1/ws")
}
