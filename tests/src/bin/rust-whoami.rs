//! The AWS SDK for Rust as an application uses it: `aws_config::defaults` reads
//! AWS_PROFILE, the config file's credential_process line, the region and
//! AWS_ENDPOINT_URL. Prints `{"arn": ..., "sdk": "rust"}` after GetCallerIdentity.
#![forbid(unsafe_code)]

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let sts = aws_sdk_sts::Client::new(&config);
    match sts.get_caller_identity().send().await {
        Ok(out) => {
            let doc = serde_json::json!({"arn": out.arn().unwrap_or_default(), "sdk": "rust"});
            println!("{doc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "keyward-rust-whoami: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            );
            ExitCode::FAILURE
        }
    }
}
