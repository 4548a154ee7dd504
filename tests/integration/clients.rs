//! The small blocking clients of `hotrun_support::clients`, tested against fake
//! servers: the websocket handshake, fragmented messages, pings and refusals.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use hotrun_support::clients::{read_line, ws_accept, WsClient, TIMEOUT};

#[test]
fn ws_accept_matches_rfc_6455_example() {
    assert_eq!(
        ws_accept("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

/// A one-connection websocket server on 127.0.0.1 for the client's own tests: it reads
/// the request head, hands its lines and the stream to `serve`, and returns the
/// address.
fn fake_server(
    serve: impl FnOnce(Vec<String>, TcpStream) + Send + 'static,
) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = Vec::new();
        loop {
            let line = read_line(&mut reader).unwrap();
            if line.is_empty() {
                break;
            }
            head.push(line);
        }
        serve(head, stream);
    });
    (addr, server)
}

/// An unmasked server frame.
fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![if fin { 0x80 | opcode } else { opcode }];
    match payload.len() {
        len if len < 126 => frame.push(len as u8),
        len if len <= usize::from(u16::MAX) => {
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

#[test]
fn ws_client_reassembles_large_fragmented_messages_and_waits_with_a_limit() {
    let (addr, server) = fake_server(|head, mut stream| {
        let header = |name: &str| {
            head.iter().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_string())
            })
        };
        // An empty value removes a default header; others replace or add.
        assert_eq!(header("Origin"), None, "{head:?}");
        assert_eq!(header("Host").as_deref(), Some("hotrun.test"), "{head:?}");
        assert_eq!(header("X-Extra").as_deref(), Some("1"), "{head:?}");
        let accept = ws_accept(&header("Sec-WebSocket-Key").unwrap());
        let mut out = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes();
        // 3 MiB in three fragments, with a ping between two of them.
        let part = vec![b'a'; 1 << 20];
        out.extend(server_frame(false, 0x1, &part));
        out.extend(server_frame(true, 0x9, b"ping"));
        out.extend(server_frame(false, 0x0, &part));
        out.extend(server_frame(true, 0x0, &part));
        stream.write_all(&out).unwrap();
        // The pong comes back, masked, with the ping's payload.
        let mut pong = [0u8; 2 + 4 + 4];
        stream.read_exact(&mut pong).unwrap();
        assert_eq!(pong[0], 0x80 | 0xA);
        let unmasked: Vec<u8> = (0..4).map(|i| pong[6 + i] ^ pong[2 + i]).collect();
        assert_eq!(unmasked, b"ping");
        std::thread::sleep(Duration::from_millis(300));
        stream.write_all(&server_frame(true, 0x1, b"late")).unwrap();
    });
    let mut ws = WsClient::connect_with(
        &addr,
        "/",
        &[("Origin", ""), ("host", "hotrun.test"), ("X-Extra", "1")],
    )
    .unwrap()
    .unwrap();
    let message = ws.recv_text().unwrap();
    assert_eq!(message.len(), 3 << 20);
    assert!(message.bytes().all(|b| b == b'a'));
    assert_eq!(
        ws.recv_text_timeout(Duration::from_millis(50)).unwrap(),
        None
    );
    assert_eq!(
        ws.recv_text_timeout(TIMEOUT).unwrap().as_deref(),
        Some("late")
    );
    server.join().unwrap();
}

#[test]
fn ws_client_reports_a_refused_upgrade_as_its_status() {
    let (addr, server) = fake_server(|_, mut stream| {
        stream
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
    });
    let answer = WsClient::connect_with(&addr, "/ws", &[]).unwrap();
    assert_eq!(answer.err(), Some(403));
    server.join().unwrap();
}
