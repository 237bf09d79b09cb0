//! AWS clients for the CLI: admin credentials from the standard chain, an enrollment
//! code's temporary credentials, or this computer's MFA session from keywardd.

use std::time::Duration;

use anyhow::{Context, Result};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use keyward_proto::client::Client;
use keyward_proto::credential_process::{fetch, Prompt};
use zeroize::Zeroizing;

pub const DEFAULT_REGION: &str = "us-east-1";

/// One set of clients sharing one identity (cheap to clone).
#[derive(Clone)]
pub struct Aws {
    pub config: SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
}

fn loader(region: Option<&str>) -> aws_config::ConfigLoader {
    let mut l = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(4)
                .with_max_backoff(Duration::from_secs(2)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(r) = region {
        l = l.region(Region::new(r.to_owned()));
    }
    l
}

impl Aws {
    fn from_config(config: SdkConfig) -> Self {
        // Emulators and gateways set AWS_ENDPOINT_URL; they want path-style bucket URLs.
        let custom_endpoint = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        Self::clients(config, custom_endpoint)
    }

    fn clients(config: SdkConfig, path_style: bool) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(path_style)
            .build();
        Self {
            iam: aws_sdk_iam::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            kms: aws_sdk_kms::Client::new(&config),
            config,
        }
    }

    /// Admin credentials: a named profile, or the standard chain (env vars first).
    pub async fn admin(profile: Option<&str>, region: Option<&str>) -> Result<Self> {
        let mut l = loader(region);
        if let Some(p) = profile {
            l = l.profile_name(p);
        }
        let mut config = l.load().await;
        if config.region().is_none() {
            config = config
                .into_builder()
                .region(Region::new(DEFAULT_REGION))
                .build();
        }
        let found = match config.credentials_provider() {
            Some(p) => p.provide_credentials().await.map(|_| ()),
            None => Err(
                aws_credential_types::provider::error::CredentialsError::not_loaded("no provider"),
            ),
        };
        // The chain's own errors end at IMDS and carry its whole HTTP response: the
        // user needs to know only that nothing gave credentials, and what to pass.
        match (found, profile) {
            (Ok(()), _) => Ok(Self::from_config(config)),
            (Err(_), Some(p)) => anyhow::bail!(
                "the AWS profile `{p}` gives no usable credentials; check it with `aws sts get-caller-identity --profile {p}`"
            ),
            (Err(_), None) => anyhow::bail!(
                "no AWS credentials found; use `--admin-profile P` or `AWS_PROFILE` with the account's admin credentials"
            ),
        }
    }

    /// Fixed credentials (an enrollment code's, or a session's).
    pub async fn with_credentials(creds: Credentials, region: Option<&str>) -> Self {
        let config = loader(Some(region.unwrap_or(DEFAULT_REGION)))
            .credentials_provider(creds)
            .load()
            .await;
        Self::from_config(config)
    }

    /// This computer's MFA session for a keyward base profile, from keywardd (asking
    /// for a code if needed).
    pub async fn from_keyward_profile(profile: &str, region: Option<&str>) -> Result<Self> {
        let name = profile.to_owned();
        let body = tokio::task::spawn_blocking(move || {
            fetch(&Client::default_socket(), &name, Prompt::IfTerminal)
        })
        .await?
        .map_err(|e| anyhow::anyhow!(e.message))?;
        let creds = parse_process_json(&body)?;
        Ok(Self::with_credentials(creds, region).await)
    }

    /// The access key id of the identity in use (for advice, never the secret).
    pub async fn access_key_id(&self) -> Option<String> {
        let p = self.config.credentials_provider()?;
        p.provide_credentials()
            .await
            .ok()
            .map(|c| c.access_key_id().to_owned())
    }

    /// `(account, arn)` of the identity in use.
    pub async fn whoami(&self) -> Result<(String, String)> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| {
                crate::iam::AwsError::new("sts:GetCallerIdentity", &e).reworded(str::to_owned)
            })
            .context("cannot tell who these credentials belong to (sts:GetCallerIdentity)")?;
        Ok((
            out.account().unwrap_or_default().to_owned(),
            out.arn().unwrap_or_default().to_owned(),
        ))
    }

    pub fn region(&self) -> String {
        self.config
            .region()
            .map_or_else(|| DEFAULT_REGION.to_owned(), ToString::to_string)
    }
}

/// credential_process JSON (from keywardd) into SDK credentials.
pub fn parse_process_json(body: &[u8]) -> Result<Credentials> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Doc {
        access_key_id: String,
        secret_access_key: Zeroizing<String>,
        session_token: Option<Zeroizing<String>>,
    }
    let d: Doc = serde_json::from_slice(body).context("unreadable credentials from keywardd")?;
    Ok(Credentials::new(
        d.access_key_id,
        d.secret_access_key.as_str(),
        d.session_token.map(|t| t.to_string()),
        None,
        "keyward",
    ))
}
