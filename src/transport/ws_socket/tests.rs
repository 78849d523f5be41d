//! The socket over in-memory and loopback streams: events in, frames out, pongs,
//! close echoes, disconnect pushes, partial writes; and the handshake's accept key.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const MASK: [u8; 4] = [1, 2, 3, 4];

fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![first, 0x80 | payload.len() as u8];
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

fn options(binary: bool, push_disconnect: bool) -> Options {
    Options { binary, push_disconnect, message_size_limit: 1 << 20, read_chunk: 4096 }
}

/// Reads one server frame: (first byte, payload).
async fn server_frame(r: &mut (impl tokio::io::AsyncRead + Unpin)) -> (u8, Vec<u8>) {
    let mut h = [0; 2];
    r.read_exact(&mut h).await.unwrap();
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let len = match h[1] & 0x7f {
        126 => r.read_u16().await.unwrap() as usize,
        127 => r.read_u64().await.unwrap() as usize,
        n => n as usize,
    };
    let mut p = vec![0; len];
    r.read_exact(&mut p).await.unwrap();
    (h[0], p)
}

#[test]
fn accept_key_matches_rfc_6455() {
    // The example of RFC 6455 §1.3.
    assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[tokio::test]
async fn messages_in_and_frames_out() {
    let (io, mut peer) = tokio::io::duplex(1 << 16);
    let mut ws = WsSocket::new(io, options(false, false));
    peer.write_all(&client_frame(0x81, b"{\"id\":1}")).await.unwrap();
    peer.write_all(&client_frame(0x82, b"\x01")).await.unwrap();
    assert!(matches!(ws.next().await, Some(Inbound::Frame(f)) if f == "{\"id\":1}"));
    assert!(matches!(ws.next().await, Some(Inbound::Unsupported)), "binary on a JSON socket");
    ws.send(Outbound::Frame(Bytes::from_static(b"{\"id\":1,\"connect\":{}}"))).await.unwrap();
    assert_eq!(server_frame(&mut peer).await, (0x81, b"{\"id\":1,\"connect\":{}}".to_vec()));

    let (io, mut peer) = tokio::io::duplex(1 << 16);
    let mut ws = WsSocket::new(io, options(true, false));
    peer.write_all(&client_frame(0x82, b"\x05abcde")).await.unwrap();
    peer.write_all(&client_frame(0x81, b"{}")).await.unwrap();
    assert!(matches!(ws.next().await, Some(Inbound::Frame(f)) if f == "\x05abcde"));
    assert!(matches!(ws.next().await, Some(Inbound::Unsupported)), "text on a protobuf socket");
    ws.send(Outbound::Frame(Bytes::from_static(b"\x02hi"))).await.unwrap();
    assert_eq!(server_frame(&mut peer).await, (0x82, b"\x02hi".to_vec()));
}

/// A batch of messages goes out as a frame each (short, empty and extended-length
/// headers alike), in order; a batch of one is an ordinary frame.
#[tokio::test]
async fn messages_go_out_as_a_frame_each() {
    let (io, mut peer) = tokio::io::duplex(1 << 16);
    let mut ws = WsSocket::new(io, options(false, false));
    let long = "x".repeat(300);
    let batch = vec![Bytes::from_static(b"{\"a\":1}"), Bytes::new(), Bytes::from(long.clone())];
    ws.send(Outbound::Frame(Messages(batch))).await.unwrap();
    ws.send(Outbound::Frame(Messages(vec![Bytes::from_static(b"{}")]))).await.unwrap();
    assert_eq!(server_frame(&mut peer).await, (0x81, b"{\"a\":1}".to_vec()));
    assert_eq!(server_frame(&mut peer).await, (0x81, Vec::new()));
    assert_eq!(server_frame(&mut peer).await, (0x81, long.into_bytes()));
    assert_eq!(server_frame(&mut peer).await, (0x81, b"{}".to_vec()));
}

#[tokio::test]
async fn pings_get_pongs_while_reading() {
    let (io, mut peer) = tokio::io::duplex(1 << 16);
    let mut ws = WsSocket::new(io, options(false, false));
    peer.write_all(&client_frame(0x89, b"are you there")).await.unwrap();
    peer.write_all(&client_frame(0x8A, b"")).await.unwrap();
    peer.write_all(&client_frame(0x81, b"{}")).await.unwrap();
    assert!(matches!(ws.next().await, Some(Inbound::Frame(f)) if f == "{}"));
    assert_eq!(server_frame(&mut peer).await, (0x8A, b"are you there".to_vec()));
}

#[tokio::test]
async fn a_client_close_is_echoed_with_its_code() {
    let (io, mut peer) = tokio::io::duplex(1 << 16);
    let mut ws = WsSocket::new(io, options(false, false));
    let mut p = 4000u16.to_be_bytes().to_vec();
    p.extend_from_slice(b"bye");
    peer.write_all(&client_frame(0x88, &p)).await.unwrap();
    assert!(matches!(ws.next().await, Some(Inbound::PeerClosed)));
    assert!(ws.next().await.is_none(), "nothing is read after a close");
    ws.send(Outbound::<Bytes>::EchoClose).await.unwrap();
    assert_eq!(server_frame(&mut peer).await, (0x88, 4000u16.to_be_bytes().to_vec()));

    let (io, mut peer) = tokio::io::duplex(1 << 16);
    let mut ws = WsSocket::new(io, options(false, false));
    peer.write_all(&client_frame(0x88, b"")).await.unwrap();
    assert!(matches!(ws.next().await, Some(Inbound::PeerClosed)));
    ws.send(Outbound::<Bytes>::EchoClose).await.unwrap();
    assert_eq!(server_frame(&mut peer).await, (0x88, Vec::new()), "no code, no payload");
}

#[tokio::test]
async fn violations_and_the_end_of_the_stream() {
    let (io, mut peer) = tokio::io::duplex(1 << 16);
    let mut ws = WsSocket::new(io, options(false, false));
    peer.write_all(&[0x81, 0x02, b'{', b'}']).await.unwrap(); // unmasked
    assert!(matches!(ws.next().await, Some(Inbound::Broken(Some(d))) if d.code == 1002));
    assert!(ws.next().await.is_none());

    let (io, peer) = tokio::io::duplex(1 << 16);
    let mut ws = WsSocket::new(io, options(false, false));
    drop(peer);
    assert!(matches!(ws.next().await, Some(Inbound::Broken(None))), "gone without a close");

    let (io, mut peer) = tokio::io::duplex(1 << 16);
    let mut ws = WsSocket::new(io, Options { message_size_limit: 8, ..options(false, false) });
    peer.write_all(&client_frame(0x81, b"0123456789")).await.unwrap();
    assert!(matches!(ws.next().await, Some(Inbound::Broken(Some(d))) if d.code == 1009));
}

#[tokio::test]
async fn a_close_is_preceded_by_a_disconnect_push_when_asked() {
    let (io, mut peer) = tokio::io::duplex(1 << 16);
    let mut ws = WsSocket::new(io, options(false, true));
    ws.send(Outbound::<Bytes>::Close(Disconnect::shutdown())).await.unwrap();
    let (op, push) = server_frame(&mut peer).await;
    assert_eq!(op, 0x81);
    let push: serde_json::Value = serde_json::from_slice(&push).unwrap();
    assert_eq!(push["disconnect"]["code"], 3001);
    let (op, close) = server_frame(&mut peer).await;
    assert_eq!(op, 0x88);
    assert_eq!(&close[..2], &3001u16.to_be_bytes());
    assert_eq!(&close[2..], b"shutdown");

    let (io, mut peer) = tokio::io::duplex(1 << 16);
    let mut ws = WsSocket::new(io, options(false, false));
    ws.send(Outbound::<Bytes>::Close(Disconnect::shutdown())).await.unwrap();
    assert_eq!(server_frame(&mut peer).await.0, 0x88, "only the close without the push");
}

/// Over real TCP the frame is written vectored (header and payload without a copy);
/// a payload far larger than the socket buffers goes out in many partial writes,
/// resumed where each stopped, while the peer reads slowly.
#[tokio::test]
async fn large_frames_survive_partial_vectored_writes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, server) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
    let (mut client, (server, _)) = (client.unwrap(), server.unwrap());
    let mut ws = WsSocket::new(server, options(false, false));
    assert!(ws.vectored);
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let expected = payload.clone();
    let writer = tokio::spawn(async move {
        ws.send(Outbound::Frame(Bytes::from(payload))).await.unwrap();
        ws.send(Outbound::Frame(Bytes::from_static(b"after"))).await.unwrap();
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (op, got) = server_frame(&mut client).await;
    assert_eq!(op, 0x81);
    assert!(got == expected, "payload intact");
    assert_eq!(server_frame(&mut client).await, (0x81, b"after".to_vec()));
    writer.await.unwrap();
}
