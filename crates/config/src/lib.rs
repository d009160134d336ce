//! runway's pools document: one model, read from TOML or JSON, used by the deployed Lambdas
//! and by `runway local` alike, and checked with a field path for every problem
//! (`runway config check FILE`).
//!
//! ```toml
//! router_fallback = "ignore"                 # or { pool = "linux-x64" }
//! throttle_fallback = "admit"                # or "reject"
//!
//! [github]
//! scope = "organization"                     # or "repository", or { enterprise = "acme" }
//!
//! [[pools]]
//! name = "linux-arm64"
//! labels = ["self-hosted", "linux", "arm64"]
//! image = "ami-0123456789abcdef0"            # what runners boot (routing may override it
//! instance_types = ["c7g.large", "m7g.large"] #   within allowed_images / allowed_instance_types)
//! market = "spot"                            # or "on-demand"
//! max_running = 20
//!
//! [pools.provider]                           # where the runners run
//! kind = "ec2"                               # or "local" (runway local only)
//! subnets = ["subnet-1", "subnet-2"]         # default: the stack's
//! security_groups = ["sg-1"]
//! # launch_template = { name = "runner", version = "4" }  (instead of image)
//! ```
//!
//! The same document in JSON:
//!
//! ```json
//! { "github": { "scope": "organization" },
//!   "pools": [{ "name": "linux-arm64", "labels": ["self-hosted", "linux", "arm64"],
//!               "image": "ami-0123456789abcdef0", "instance_types": ["c7g.large"],
//!               "provider": { "kind": "ec2", "subnets": ["subnet-1"] } }] }
//! ```
//!
//! A pool without a `provider` runs where its host runs runners by default: EC2 when
//! deployed, local processes under `runway local` ([`Host`]). Every field of a pool besides
//! `provider` is the job flow's ([`runway_jobflow::PoolConfig`]).

mod document;
mod error;
mod provider;

pub use document::{Document, Host, ReadOptions};
pub use error::{ConfigError, Format, Problem};
pub use provider::{
    Ec2Defaults, Ec2Settings, LaunchTemplateSettings, LocalRunners, ProviderSettings,
    ec2_pool_config,
};

#[cfg(test)]
mod tests {
    use runway_providers::{CapacityPreference, ImageSource, LaunchTemplateRef, ProviderKind};

    use super::*;

    const JSON: &str = r#"{
        "github": { "scope": "organization", "runner_name_prefix": "ci" },
        "router_fallback": { "pool": "arm" },
        "pools": [
            { "name": "arm", "labels": ["self-hosted", "arm64"], "image": "ami-0123456789abcdef0",
              "instance_types": ["c7g.large"], "max_running": 3, "market": "on-demand",
              "provider": { "kind": "ec2", "subnets": ["subnet-1"], "tags": { "team": "ci" },
                            "imds_hop_limit": 2 } },
            { "name": "x64", "labels": ["self-hosted", "x64"],
              "provider": { "kind": "ec2",
                            "launch_template": { "name": "runner-x64", "version": "4" },
                            "capacity": "spot-only" } }
        ]
    }"#;

    const TOML: &str = r#"
        router_fallback = { pool = "arm" }

        [github]
        scope = "organization"
        runner_name_prefix = "ci"

        [[pools]]
        name = "arm"
        labels = ["self-hosted", "arm64"]
        image = "ami-0123456789abcdef0"
        instance_types = ["c7g.large"]
        max_running = 3
        market = "on-demand"
        provider = { kind = "ec2", subnets = ["subnet-1"], tags = { team = "ci" }, imds_hop_limit = 2 }

        [[pools]]
        name = "x64"
        labels = ["self-hosted", "x64"]
        [pools.provider]
        kind = "ec2"
        launch_template = { name = "runner-x64", version = "4" }
        capacity = "spot-only"
    "#;

    fn lambda() -> ReadOptions {
        ReadOptions::new(Host::Lambda)
    }

    fn defaults() -> Ec2Defaults {
        Ec2Defaults {
            instance_profile: Some("runway-runner".into()),
            subnets: vec!["subnet-default".into()],
            security_groups: vec!["sg-default".into()],
            ..Ec2Defaults::for_stack("ci-prod")
        }
    }

    #[test]
    fn toml_and_json_are_two_spellings_of_one_document() {
        let json = Document::from_json(JSON, &lambda()).unwrap();
        let toml = Document::from_toml(TOML, &lambda()).unwrap();
        assert_eq!(json, toml);
        assert_eq!(
            json.ec2_pools(&defaults()).unwrap().len(),
            toml.ec2_pools(&defaults()).unwrap().len()
        );
    }

    #[test]
    fn ec2_settings_come_from_the_pool_its_provider_and_the_stack() {
        let document = Document::from_json(JSON, &lambda()).unwrap();
        assert_eq!(document.flow.github.runner_name_prefix, "ci");
        let pools = document.ec2_pools(&defaults()).unwrap();
        let arm = &pools["arm"];
        assert_eq!(arm.stack, "ci-prod");
        assert_eq!(arm.image, ImageSource::Ami("ami-0123456789abcdef0".into()));
        assert_eq!(arm.instance_types, ["c7g.large"]);
        assert_eq!(arm.subnets, ["subnet-1"], "the pool's own subnets win");
        assert_eq!(arm.security_groups, ["sg-default"], "the stack's default");
        assert_eq!(arm.instance_profile.as_deref(), Some("runway-runner"));
        assert_eq!(arm.capacity, CapacityPreference::OnDemand, "from market");
        assert_eq!(arm.imds_hop_limit, 2);
        assert_eq!(arm.extra_tags["team"], "ci");

        let x64 = &pools["x64"];
        assert_eq!(
            x64.image,
            ImageSource::LaunchTemplate {
                template: LaunchTemplateRef::Name("runner-x64".into()),
                version: Some("4".into()),
            }
        );
        assert_eq!(x64.capacity, CapacityPreference::SpotOnly);
        assert_eq!(x64.subnets, ["subnet-default"]);
    }

    #[test]
    fn a_pool_without_a_provider_runs_where_its_host_runs_runners() {
        let text = r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ami-1",
                       "instance_types": ["t4g.small"]}]}"#;
        let deployed = Document::from_json(text, &lambda()).unwrap();
        assert_eq!(deployed.provider("a").unwrap().kind(), ProviderKind::Ec2);
        let local = Document::from_json(text, &ReadOptions::new(Host::Local)).unwrap();
        assert_eq!(local.provider("a").unwrap().kind(), ProviderKind::Local);
        assert!(local.ec2_pools(&defaults()).unwrap().is_empty());
    }

    #[test]
    fn the_stack_names_runners_unless_the_document_does() {
        let text = r#"{"pools": [{"name": "a", "labels": ["x"], "provider": {"kind": "local"}}]}"#;
        let named =
            Document::from_json(text, &ReadOptions::for_stack(Host::Local, "ci-prod")).unwrap();
        assert_eq!(
            named.flow.github.runner_name_prefix,
            runway_jobflow::naming::stack_runner_name_prefix("ci-prod")
        );
    }

    #[test]
    fn the_stack_launch_template_carries_image_pools() {
        let document = Document::from_json(JSON, &lambda()).unwrap();
        let template = LaunchTemplateRef::Name("stack-runner".into());
        let pools = document
            .ec2_pools(&Ec2Defaults {
                launch_template: Some(template.clone()),
                ssm_kms_key_id: Some("alias/runway".into()),
                ..defaults()
            })
            .unwrap();
        assert_eq!(
            pools["arm"].image,
            ImageSource::LaunchTemplate {
                template,
                version: None
            }
        );
        // A pool with its own template keeps it.
        assert!(matches!(
            &pools["x64"].image,
            ImageSource::LaunchTemplate { template: LaunchTemplateRef::Name(name), .. }
                if name == "runner-x64"
        ));
        assert_eq!(pools["arm"].ssm_kms_key_id.as_deref(), Some("alias/runway"));
    }

    fn problems_of(text: &str, host: Host) -> Vec<String> {
        match Document::from_json(text, &ReadOptions::new(host)) {
            Ok(document) => panic!("accepted: {text}: {document:?}"),
            Err(error) => error.problems().iter().map(Problem::to_string).collect(),
        }
    }

    #[test]
    fn each_problem_names_its_field() {
        let cases = [
            ("not json", "not valid JSON"),
            ("[1]", "must be a table"),
            (
                r#"{"pools": {}}"#,
                "pools: invalid type: map, expected a sequence",
            ),
            (r#"{"pools": []}"#, "pools: the configuration has no pools"),
            (r#"{"poolz": []}"#, "unknown field `poolz`"),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "max_runing": 2}]}"#,
                "pools[0].max_runing: unknown field `max_runing`",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "max_running": "two"}]}"#,
                "pools[0].max_running: invalid type: string \"two\"",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ami-1", "instance_types": ["t4g.small"], "provider": {"kind": "ec2", "subnet": "s"}}]}"#,
                "pools[0].provider: unknown field `subnet`",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "provider": {"kind": "ecs"}}]}"#,
                "pools[0].provider.kind: unknown variant `ecs`",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"]}]}"#,
                "pools[0].image: pool \"a\" has nothing to boot",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ami-1"}]}"#,
                "pools[0].instance_types: pool \"a\" boots image ami-1 but lists no instance_types",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "provider": {"kind": "ec2", "launch_template": {"id": "lt-1", "name": "n"}}}]}"#,
                "pools[0].provider.launch_template: pool \"a\": give exactly one of \"id\" or \"name\"",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ubuntu", "instance_types": ["t"]}]}"#,
                "pools[0].provider: pool \"a\": \"ubuntu\" is not an AMI id",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ami-1", "instance_types": ["t"], "provider": {"kind": "ec2", "ssm_prefix": "jit/"}}]}"#,
                "pools[0].provider: pool \"a\": the SSM prefix \"jit/\" must start with '/'",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "provider": {"kind": "local"}}]}"#,
                "pools[0].provider.kind: pool \"a\": local runners run only under `runway local`",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ami-1", "instance_types": ["t"], "ec2": {"subnets": ["s"]}}]}"#,
                "pools[0].ec2: a pool's EC2 settings are its provider",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "provider": {"kind": "ec2", "ami": "ami-1", "instance_types": ["t"]}}]}"#,
                "pools[0].provider.ami: this setting belongs to the pool now: use the pool's \"image\"",
            ),
        ];
        for (text, expected) in cases {
            let problems = problems_of(text, Host::Lambda);
            assert!(
                problems.iter().any(|problem| problem.contains(expected)),
                "{text}: expected {expected:?} in {problems:#?}"
            );
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"{
            "router_fallback": { "pool": "nowhere" },
            "pools": [
                { "name": "a", "labels": [], "max_running": 0, "provider": { "kind": "local" } },
                { "name": "b", "labels": ["x"], "max_wait_seconds": 0,
                  "provider": { "kind": "local", "grace_seconds": 1 } }
            ]
        }"#;
        let problems = problems_of(text, Host::Local);
        let paths: Vec<&str> = problems
            .iter()
            .map(|problem| problem.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            paths,
            [
                "pools[0].labels",
                "pools[0].max_running",
                "pools[1].max_wait_seconds",
                "router_fallback"
            ],
            "{problems:#?}"
        );
    }

    proptest::proptest! {
        /// Whatever the text, reading answers (never panics); an accepted document has
        /// pools, each with a provider; a refused one names at least one problem.
        #[test]
        fn reading_never_panics(text in "\\PC{0,200}") {
            for host in [Host::Lambda, Host::Local] {
                match Document::from_json(&text, &ReadOptions::new(host)) {
                    Ok(document) => {
                        proptest::prop_assert!(!document.flow.pools.is_empty());
                        proptest::prop_assert_eq!(
                            document.pools().count(),
                            document.flow.pools.len()
                        );
                    }
                    Err(error) => proptest::prop_assert!(!error.problems().is_empty()),
                }
                let _ = Document::from_toml(&text, &ReadOptions::new(host));
            }
        }
    }
}
