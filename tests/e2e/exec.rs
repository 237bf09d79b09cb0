//! `keyward exec`: boto3 and the AWS CLI inside it take credentials from the loopback
//! endpoint; the endpoint refuses a wrong or missing token, a wrong Host, a POST and
//! another uid's process; it is gone when the command exits. `--env`, nesting.

use keyward_tests::e2e;

use serde_json::Value;

/// Inside `keyward exec`: the credential source boto3 picked, the caller, and the
/// endpoint's answers to bad requests (raw HTTP, no SDK).
const PROBE: &str = r#"
import http.client, json, os, subprocess, urllib.parse
import boto3
uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
token = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
u = urllib.parse.urlparse(uri)
def ask(method="GET", host=None, auth=None):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    headers = {"Host": host or u.netloc}
    if auth is not None:
        headers["Authorization"] = auth
    c.request(method, u.path, headers=headers)
    r = c.getresponse()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders())
session = boto3.Session()
ok, headers = ask(auth=token)
other = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "curl", "-s", "-o", "/dev/null",
                        "-w", "%{http_code}", "-H", "Authorization: " + token, uri], capture_output=True, text=True).stdout
print(json.dumps({
    "method": session.get_credentials().method,
    "arn": session.client("sts").get_caller_identity()["Arn"],
    "uri": uri, "ok": ok, "cors": [k for k in headers if k.startswith("access-control")],
    "wrong_token": ask(auth="0" * 64)[0], "no_token": ask()[0],
    "wrong_host": ask(host="evil.example:80", auth=token)[0], "post": ask("POST", auth=token)[0],
    "other_uid": other,
}))
"#;

e2e! {
    fn commands_inside_exec_use_the_endpoint_and_nothing_else_gets_in(w) {
        let m = w.machine("alice-laptop", None);
        let out = w
            .keyward(&["exec", &m.profile, "--", "python3", "-c", PROBE])
            .ok();
        let r: Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
        assert_eq!(r["method"], "container-role", "{r}");
        assert!(
            r["arn"].as_str().unwrap().ends_with(":user/alice-laptop")
                || r["arn"].as_str().unwrap().contains("alice-laptop"),
            "{r}"
        );
        assert_eq!(r["ok"], 200);
        assert_eq!(r["cors"], serde_json::json!([]), "no CORS header");
        assert_eq!(r["wrong_token"], 401);
        assert_eq!(r["no_token"], 401);
        assert_eq!(r["wrong_host"], 403);
        assert_eq!(r["post"], 405);
        assert_eq!(
            r["other_uid"], "403",
            "another uid's process is refused even with the token"
        );

        // The endpoint is gone once the command exits.
        let uri = r["uri"].as_str().unwrap();
        let addr = uri.trim_start_matches("http://").trim_end_matches('/');
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{addr} still answers"
        );

        // The AWS CLI, the same way.
        let endpoint = w.proxy.url();
        let out = w
            .keyward(&[
                "exec",
                &m.profile,
                "--",
                "aws",
                "sts",
                "get-caller-identity",
                "--endpoint-url",
                &endpoint,
                "--output",
                "json",
            ])
            .ok();
        assert!(
            out.stdout.contains("alice-laptop"),
            "{}\n{}",
            out.stdout,
            out.stderr
        );
        let out = w
            .keyward(&["exec", &m.profile, "--", "aws", "configure", "list"])
            .ok();
        assert!(out.stdout.contains("container-role"), "{}", out.stdout);

        // --env: a static session in the environment; nesting is refused unless asked for.
        let out = w.keyward(&["exec", "--env", &m.profile, "--", "python3", "-c", "import os; print(os.environ['AWS_ACCESS_KEY_ID'][:4], 'AWS_CONTAINER_CREDENTIALS_FULL_URI' in os.environ)"]).ok();
        assert_eq!(out.stdout.trim(), "ASIA False");
        let nested = w
            .keyward(&[
                "exec",
                &m.profile,
                "--",
                w.bin("keyward").to_str().unwrap(),
                "exec",
                &m.profile,
                "--",
                "true",
            ])
            .fails();
        assert!(
            nested.stderr.contains("already inside `keyward exec`")
                && nested.stderr.contains("--allow-nested"),
            "{}",
            nested.stderr
        );
        w.keyward(&[
            "exec",
            &m.profile,
            "--",
            w.bin("keyward").to_str().unwrap(),
            "exec",
            "--allow-nested",
            &m.profile,
            "--",
            "true",
        ])
        .ok();
        let code = w
            .keyward(&["exec", &m.profile, "--", "sh", "-c", "exit 7"])
            .output()
            .status
            .code();
        assert_eq!(code, Some(7), "CMD's exit code is ours");
    }
}
