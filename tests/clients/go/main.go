// keyward-go-whoami: a minimal AWS SDK for Go v2 client used by keyward's e2e
// tests. It loads credentials exactly as a user's ~/.aws/config gives them
// (AWS_PROFILE selects a profile, typically a credential_process line), calls
// STS GetCallerIdentity and prints {"arn": "...", "sdk": "go-v2"}.
//
// The endpoint comes from AWS_ENDPOINT_URL. The Debian-packaged SDK (1.17.x)
// predates native AWS_ENDPOINT_URL support, so it is applied here through a
// global endpoint resolver; being global, it also routes the AssumeRole call
// made for role_arn/source_profile profiles to the same endpoint.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "keyward-go-whoami: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Credentials must come from the config file. Never fall through to the
	// EC2 instance metadata service (a non-loopback address) on failure.
	if os.Getenv("AWS_EC2_METADATA_DISABLED") == "" {
		os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	}

	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}

	opts := []func(*config.LoadOptions) error{config.WithRegion(region)}
	if ep := os.Getenv("AWS_ENDPOINT_URL"); ep != "" {
		resolver := aws.EndpointResolverWithOptionsFunc(
			func(service, r string, _ ...interface{}) (aws.Endpoint, error) {
				return aws.Endpoint{
					URL:               ep,
					SigningRegion:     region,
					HostnameImmutable: true,
				}, nil
			})
		opts = append(opts, config.WithEndpointResolverWithOptions(resolver))
	}

	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		fail("loading AWS config: %v", err)
	}

	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		fail("GetCallerIdentity: %v", err)
	}

	line, err := json.Marshal(struct {
		Arn string `json:"arn"`
		Sdk string `json:"sdk"`
	}{aws.ToString(out.Arn), "go-v2"})
	if err != nil {
		fail("encoding output: %v", err)
	}
	fmt.Println(string(line))
}
