//! keyward-fault-proxy --upstream URL [--port N]: the test proxy as a standalone
//! process, for the benchmark and for poking at by hand.

fn main() {
    let mut upstream = None;
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--upstream" => upstream = args.next(),
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0),
            _ => {
                eprintln!("usage: keyward-fault-proxy --upstream URL [--port N]");
                std::process::exit(2);
            }
        }
    }
    let Some(upstream) = upstream else {
        eprintln!("usage: keyward-fault-proxy --upstream URL [--port N]");
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        println!("http://{}", listener.local_addr().expect("addr"));
        let (_keep, stop) = tokio::sync::oneshot::channel();
        let control = keyward_tests::proxy::Control::default();
        let emu = (*control).clone();
        keyward_emulator::serve(listener, emu, upstream, std::sync::Arc::new(control), stop).await;
    });
}
