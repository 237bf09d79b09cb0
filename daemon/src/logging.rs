//! One log filter for keywardd and the CLI: `KEYWARD_LOG` for keyward's own crates,
//! dependencies capped at warn even at `KEYWARD_LOG=trace`: their debug output can
//! include request headers, and a session token is one. `aws_config` is capped at
//! error: its credential chain warns with whole IMDS responses, headers and all.

use tracing_subscriber::EnvFilter;

const DEPENDENCY_CAPS: &str =
    "aws_config=error,aws_smithy_runtime=warn,aws_smithy_runtime_api=warn,\
aws_smithy_http_client=warn,aws_sigv4=warn,aws_sdk_sts=warn,aws_sdk_iam=warn,aws_sdk_s3=warn,\
aws_sdk_kms=warn,aws_runtime=warn,hyper=warn,hyper_util=warn,rustls=warn,h2=warn,dbus=warn,\
secret_service=warn,keyring=warn,zbus=warn";

/// The filter for `KEYWARD_LOG` (or `default` when unset).
pub fn filter(default: &str) -> EnvFilter {
    let user = std::env::var("KEYWARD_LOG").unwrap_or_else(|_| default.to_owned());
    EnvFilter::try_new(format!("{user},{DEPENDENCY_CAPS}"))
        .unwrap_or_else(|_| EnvFilter::new(default))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dependencies_stay_at_warn_under_trace() {
        let f = super::filter("trace").to_string();
        assert!(
            f.contains("aws_smithy_runtime=warn") && f.contains("hyper=warn"),
            "{f}"
        );
    }
}
