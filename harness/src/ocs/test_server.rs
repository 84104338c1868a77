//! Test-only stand-in for crossbar's HTTP bridge: a loopback HTTP/1.1 server answering
//! canned responses and reporting the requests it saw. It runs on a plain thread with
//! `std::net`, so it needs no tokio features and works under any test runtime.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

/// One HTTP request as the server saw it.
#[derive(Debug)]
pub struct Seen {
    /// e.g. `POST /call HTTP/1.1`.
    pub request_line: String,
    /// Header name/value pairs in arrival order.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Vec<u8>,
}

impl Seen {
    /// All values of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body parsed as JSON (panics if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

/// What the server does with one connection.
pub enum Canned {
    /// Answer with this status and JSON body, then close.
    Reply(u16, &'static str),
    /// Read the request and hold the connection for 5 s without answering.
    Hang,
}

fn read_request(stream: &TcpStream) -> Seen {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse::<usize>().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    Seen {
        request_line: request_line.trim_end().to_owned(),
        headers,
        body,
    }
}

/// Serve `answers` in order, one connection each, on `127.0.0.1:0`. Returns the call URL
/// (`http://127.0.0.1:<port>/call`) and a receiver of the requests seen.
pub fn serve(answers: Vec<Canned>) -> (Url, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for answer in answers {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let seen = read_request(&stream);
            let _ = tx.send(seen);
            match answer {
                Canned::Reply(status, body) => {
                    let resp = format!(
                        "HTTP/1.1 {status} Canned\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(resp.as_bytes());
                }
                Canned::Hang => thread::sleep(Duration::from_secs(5)),
            }
        }
    });
    let url = Url::parse(&format!("http://127.0.0.1:{port}/call")).unwrap();
    (url, rx)
}
