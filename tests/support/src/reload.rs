//! The reload websocket (`/__hotrun/ws`) as a page served by hotrun's proxy opens it.

use serde_json::Value;

use crate::clients::WsClient;

/// Open the reload websocket the way a page served by the proxy does.
pub fn connect(port: u16) -> WsClient {
    let origin = format!("http://127.0.0.1:{port}");
    match WsClient::connect_with(
        &format!("127.0.0.1:{port}"),
        "/__hotrun/ws",
        &[("Origin", origin.as_str())],
    )
    .expect("websocket connection")
    {
        Ok(ws) => ws,
        Err(status) => panic!("the reload websocket answered {status}"),
    }
}

/// The next message of type `kind`, skipping others.
pub fn next(ws: &mut WsClient, kind: &str) -> Value {
    loop {
        let text = ws.recv_text().expect("a message from the hub");
        let message: Value = serde_json::from_str(&text).unwrap();
        if message["type"] == kind {
            return message;
        }
    }
}
