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
//! kind = "ec2"                               # or "ecs", "eks", or "local" (runway local only)
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
//! An ECS pool runs one task per job; its `image` is the runner's container image:
//!
//! ```toml
//! [[pools]]
//! name = "linux-fargate"
//! labels = ["self-hosted", "linux", "fargate"]
//! image = "ghcr.io/actions/actions-runner:latest"  # the stack registers a task definition
//!
//! [pools.provider]
//! kind = "ecs"
//! cluster = "runners"
//! subnets = ["subnet-1"]
//! cpu = 2048                                 # CPU units; memory in MiB
//! memory = 4096
//! capacity = "fargate_spot_then_fargate"     # or "fargate", "fargate_spot", "ec2"
//! # docker = "dind"                          (capacity "ec2" only: Fargate runs nothing
//! #                                           privileged)
//! # task_definition = "my-runner:3"          (instead of the stack's)
//! ```
//!
//! An EKS pool runs one pod per job in a namespace of an EKS cluster; its `image` is the
//! pod's runner image:
//!
//! ```toml
//! [[pools]]
//! name = "linux-eks"
//! labels = ["self-hosted", "linux", "eks"]
//! image = "ghcr.io/actions/actions-runner:latest"
//!
//! [pools.provider]
//! kind = "eks"
//! cluster = "ci"                             # the EKS cluster's name
//! namespace = "runners"                      # runway's access entry may create pods there
//! cpu = "2"                                  # requests; memory_limit defaults to memory
//! memory = "4Gi"
//! node_selector = { "kubernetes.io/arch" = "arm64" }
//! tolerations = [{ key = "ci", operator = "Exists", effect = "NoSchedule" }]
//! # service_account = "runner"               (IRSA or EKS Pod Identity for the jobs)
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
    Ec2Defaults, Ec2Settings, EcsDefaults, EcsSettings, EksSettings, HookSettings, LambdaSettings,
    LaunchTemplateSettings, LocalRunners, PoolOs, ProviderSettings, WINDOWS_RUNNER_DIR,
    ec2_pool_config, ecs_default_task_definition, ecs_pool_config, eks_pool_config,
    lambda_pool_config,
};

#[cfg(test)]
mod tests {
    use runway_providers::{
        CapacityPreference, DockerMode, EcsCapacity, ImageSource, LaunchTemplateRef, ProviderKind,
    };

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
    fn stock_image_pools_take_an_image_parameter_an_os_and_hooks() {
        let text = r#"{"pools": [
            {"name": "al2023", "labels": ["self-hosted", "linux"],
             "image": "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
             "instance_types": ["m7i.large"],
             "provider": {"kind": "ec2", "hooks": {"before_runner": "dnf install -y git",
                          "job_started": "echo start", "job_completed": "echo done"}}},
            {"name": "win", "labels": ["self-hosted", "Windows"], "image": "ami-1",
             "instance_types": ["m7i.large"]}
        ]}"#;
        let document = Document::from_json(text, &lambda()).unwrap();
        let stack = Ec2Defaults {
            runner_cache_bucket: Some("ci-prod-runner-cache".into()),
            ..defaults()
        };
        let pools = document.ec2_pools(&stack).unwrap();
        let linux = &pools["al2023"];
        assert_eq!(
            linux.image,
            ImageSource::SsmParameter(
                "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64".into()
            )
        );
        assert_eq!(linux.os, runway_providers::BootOs::Linux);
        assert_eq!(
            linux.hooks.before_runner.as_deref(),
            Some("dnf install -y git")
        );
        assert_eq!(
            linux.runner_cache_bucket.as_deref(),
            Some("ci-prod-runner-cache")
        );
        let windows = &pools["win"];
        assert_eq!(
            windows.os,
            runway_providers::BootOs::Windows,
            "from its labels"
        );
        assert_eq!(windows.runner_dir, WINDOWS_RUNNER_DIR);
    }

    #[test]
    fn ec2_pools_log_to_their_group_unless_told_not_to_and_windows_takes_no_runner_user() {
        let text = r#"{"pools": [
            {"name": "linux-x64", "labels": ["self-hosted"], "image": "ami-1",
             "instance_types": ["m7i.large"]},
            {"name": "quiet", "labels": ["self-hosted"], "image": "ami-1",
             "instance_types": ["m7i.large"], "provider": {"kind": "ec2", "logs": false}}
        ]}"#;
        let pools = Document::from_json(text, &lambda())
            .unwrap()
            .ec2_pools(&defaults())
            .unwrap();
        assert_eq!(
            pools["linux-x64"].log_group.as_deref(),
            Some("/runway/ci-prod/runners/linux-x64")
        );
        assert_eq!(pools["quiet"].log_group, None);
        let windows = r#"{"pools": [{"name": "win", "labels": ["self-hosted", "windows"],
            "image": "ami-1", "instance_types": ["m7i.large"],
            "provider": {"kind": "ec2", "runner_user": "builder"}}]}"#;
        let error = Document::from_json(windows, &lambda())
            .and_then(|document| document.ec2_pools(&defaults()).map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("pools[0].provider.runner_user"), "{error}");
        assert!(error.contains("before_runner"), "{error}");
    }

    #[test]
    fn hooks_too_large_for_user_data_or_unknown_are_refused_with_their_path() {
        let large = "echo 0123456789\\n".repeat(1200);
        let text = format!(
            r#"{{"pools": [{{"name": "a", "labels": ["x"], "image": "ami-1",
                "instance_types": ["m7i.large"],
                "provider": {{"kind": "ec2", "hooks": {{"job_started": "{large}"}}}}}}]}}"#
        );
        let error = Document::from_json(&text, &lambda())
            .unwrap_err()
            .to_string();
        assert!(error.contains("pools[0].provider.hooks"), "{error}");
        assert!(error.contains("16384-byte user data limit"), "{error}");
        let unknown = r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ami-1",
            "instance_types": ["m7i.large"],
            "provider": {"kind": "ec2", "hooks": {"after_job": "x"}}}]}"#;
        assert!(Document::from_json(unknown, &lambda()).is_err());
        let bad_image = r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ubuntu",
            "instance_types": ["m7i.large"], "provider": {"kind": "ec2"}}]}"#;
        let error = Document::from_json(bad_image, &lambda())
            .unwrap_err()
            .to_string();
        assert!(error.contains("pools[0].image"), "{error}");
        assert!(error.contains("resolve:ssm:"), "{error}");
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

    /// Three pools: the stack's profile, Session Manager's, and a profile of their own.
    const PROFILE_POOLS: &str = r#"{"pools": [
        {"name": "plain", "labels": ["plain"], "image": "ami-1", "instance_types": ["m7i.large"]},
        {"name": "ssm", "labels": ["ssm"], "image": "ami-1", "instance_types": ["m7i.large"],
         "provider": {"kind": "ec2", "session_manager": true}},
        {"name": "own", "labels": ["own"], "image": "ami-1", "instance_types": ["m7i.large"],
         "provider": {"kind": "ec2", "session_manager": false,
                      "instance_profile": "arn:aws:iam::123456789012:instance-profile/ci/team-runners"}}
    ]}"#;

    #[test]
    fn session_manager_pools_launch_with_the_stack_s_session_profile() {
        let document = Document::from_json(PROFILE_POOLS, &lambda()).unwrap();
        let stack = Ec2Defaults {
            session_instance_profile: Some("ci-prod-RunnerSessionInstanceProfile-X".into()),
            ..defaults()
        };
        let pools = document.ec2_pools(&stack).unwrap();
        assert_eq!(
            pools["plain"].instance_profile.as_deref(),
            Some("runway-runner"),
            "off by default: the stack's runner profile"
        );
        assert_eq!(
            pools["ssm"].instance_profile.as_deref(),
            Some("ci-prod-RunnerSessionInstanceProfile-X")
        );
        assert_eq!(
            pools["own"].instance_profile.as_deref(),
            Some("arn:aws:iam::123456789012:instance-profile/ci/team-runners")
        );
        // The pools still launch through the stack's template when it has one: the profile
        // goes with each launch and replaces the template's.
        let templated = document
            .ec2_pools(&Ec2Defaults {
                launch_template: Some(LaunchTemplateRef::Name("ci-prod-runner".into())),
                ..stack.clone()
            })
            .unwrap();
        for pool in ["plain", "ssm", "own"] {
            assert!(
                matches!(templated[pool].image, ImageSource::LaunchTemplate { .. }),
                "{pool}"
            );
            assert_eq!(
                templated[pool].instance_profile, pools[pool].instance_profile,
                "{pool}"
            );
        }
    }

    #[test]
    fn session_manager_with_an_own_profile_or_without_a_stack_is_refused_with_its_path() {
        let both = r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ami-1",
            "instance_types": ["m7i.large"],
            "provider": {"kind": "ec2", "session_manager": true, "instance_profile": "team"}}]}"#;
        for host in [Host::Lambda, Host::Local] {
            let problems = problems_of(both, host);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].starts_with("pools[0].provider.session_manager: pool \"a\""),
                "{problems:?}"
            );
            assert!(
                problems[0].contains("attach AmazonSSMManagedInstanceCore to your own role"),
                "{problems:?}"
            );
        }

        // `runway local` has no stack, so no Session Manager profile.
        let local = problems_of(PROFILE_POOLS, Host::Local);
        assert_eq!(local.len(), 1, "{local:?}");
        assert!(
            local[0].starts_with("pools[1].provider.session_manager:"),
            "{local:?}"
        );
        assert!(local[0].contains("deployed stack"), "{local:?}");
        assert!(
            local[0].contains("RunnerSessionInstanceProfile"),
            "{local:?}"
        );
        // Mapped with a stack that lacks it, the same problem.
        let document = Document::from_json(PROFILE_POOLS, &lambda()).unwrap();
        let error = document.ec2_pools(&defaults()).unwrap_err().to_string();
        assert!(
            error.contains("pools[1].provider.session_manager"),
            "{error}"
        );
        // Off, explicitly or by default, needs nothing from the stack.
        let off = r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ami-1",
            "instance_types": ["m7i.large"],
            "provider": {"kind": "ec2", "session_manager": false}}]}"#;
        let document = Document::from_json(off, &ReadOptions::new(Host::Local)).unwrap();
        let pools = document
            .ec2_pools(&Ec2Defaults::for_stack("runway"))
            .unwrap();
        assert_eq!(pools["a"].instance_profile, None);
    }

    #[test]
    fn an_instance_profile_must_be_a_name_or_an_instance_profile_arn() {
        for (profile, wanted) in [
            ("team runners", "neither a name"),
            (
                "arn:aws:iam::123456789012:role/team-runners",
                "that is a role",
            ),
            (
                "arn:aws:iam::1234:instance-profile/team-runners",
                "neither a name",
            ),
            (
                "arn:aws:iam::123456789012:instance-profile/",
                "neither a name",
            ),
        ] {
            let text = format!(
                r#"{{"pools": [{{"name": "a", "labels": ["x"], "image": "ami-1",
                "instance_types": ["m7i.large"],
                "provider": {{"kind": "ec2", "instance_profile": "{profile}"}}}}]}}"#
            );
            let problems = problems_of(&text, Host::Lambda);
            assert_eq!(problems.len(), 1, "{profile}: {problems:?}");
            assert!(
                problems[0].starts_with("pools[0].provider.instance_profile: pool \"a\""),
                "{profile}: {problems:?}"
            );
            assert!(problems[0].contains(wanted), "{profile}: {problems:?}");
        }
        let unknown = r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ami-1",
            "instance_types": ["m7i.large"],
            "provider": {"kind": "ec2", "session_manger": true}}]}"#;
        let problems = problems_of(unknown, Host::Lambda);
        assert!(
            problems[0].contains("unknown field `session_manger`"),
            "{problems:?}"
        );
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
                "pools[0].provider.subnet: unknown field `subnet`",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "provider": {"kind": "gke"}}]}"#,
                "pools[0].provider.kind: unknown variant `gke`",
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
                "pools[0].image: pool \"a\": \"ubuntu\" is neither an AMI id (ami-...) nor resolve:ssm:<parameter>",
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

    const ECS_JSON: &str = r#"{
        "pools": [
            { "name": "fargate", "labels": ["self-hosted", "fargate"],
              "image": "ghcr.io/actions/actions-runner:2.321.0", "disk_gib": 50,
              "provider": { "kind": "ecs", "cluster": "runners", "cpu": 2048, "memory": 8192,
                            "assign_public_ip": true, "tags": { "team": "ci" } } },
            { "name": "docker", "labels": ["self-hosted", "docker"], "market": "on-demand",
              "image": "ghcr.io/actions/actions-runner:2.321.0",
              "provider": { "kind": "ecs", "capacity": "ec2", "docker": "dind",
                            "capacity_provider": "runner-asg", "subnets": ["subnet-own"] } },
            { "name": "own", "labels": ["self-hosted", "own"], "market": "on-demand",
              "provider": { "kind": "ecs", "task_definition": "my-runner:7",
                            "container_name": "actions", "capacity": "fargate_spot" } }
        ]
    }"#;

    const ECS_TOML: &str = r#"
        [[pools]]
        name = "fargate"
        labels = ["self-hosted", "fargate"]
        image = "ghcr.io/actions/actions-runner:2.321.0"
        disk_gib = 50
        [pools.provider]
        kind = "ecs"
        cluster = "runners"
        cpu = 2048
        memory = 8192
        assign_public_ip = true
        tags = { team = "ci" }

        [[pools]]
        name = "docker"
        labels = ["self-hosted", "docker"]
        market = "on-demand"
        image = "ghcr.io/actions/actions-runner:2.321.0"
        provider = { kind = "ecs", capacity = "ec2", docker = "dind", capacity_provider = "runner-asg", subnets = ["subnet-own"] }

        [[pools]]
        name = "own"
        labels = ["self-hosted", "own"]
        market = "on-demand"
        provider = { kind = "ecs", task_definition = "my-runner:7", container_name = "actions", capacity = "fargate_spot" }
    "#;

    fn ecs_defaults() -> EcsDefaults {
        EcsDefaults {
            cluster: Some("stack-runners".into()),
            subnets: vec!["subnet-default".into()],
            security_groups: vec!["sg-default".into()],
            task_role_arn: Some("arn:aws:iam::123456789012:role/runner-task".into()),
            ssm_kms_key_id: Some("alias/runway".into()),
            ..EcsDefaults::for_stack("ci-prod")
        }
    }

    #[test]
    fn ecs_settings_come_from_the_pool_its_provider_and_the_stack() {
        let json = Document::from_json(ECS_JSON, &lambda()).unwrap();
        let toml = Document::from_toml(ECS_TOML, &lambda()).unwrap();
        assert_eq!(json, toml, "two spellings of one document");
        assert_eq!(json.provider("fargate").unwrap().kind(), ProviderKind::Ecs);
        let pools = json.ecs_pools(&ecs_defaults()).unwrap();
        assert!(json.ec2_pools(&defaults()).unwrap().is_empty());

        let fargate = &pools["fargate"];
        assert_eq!(fargate.stack, "ci-prod");
        assert_eq!(fargate.cluster, "runners", "the pool's own cluster wins");
        assert_eq!(fargate.task_definition, "ci-prod-runner-fargate");
        assert_eq!(
            fargate.image.as_deref(),
            Some("ghcr.io/actions/actions-runner:2.321.0")
        );
        assert_eq!(fargate.subnets, ["subnet-default"], "the stack's default");
        assert_eq!(fargate.security_groups, ["sg-default"]);
        assert!(fargate.assign_public_ip);
        assert_eq!(
            fargate.capacity,
            EcsCapacity::FargateSpotThenFargate,
            "spot market, the default"
        );
        assert_eq!((fargate.cpu, fargate.memory), (Some(2048), Some(8192)));
        assert_eq!(fargate.ephemeral_storage_gib, Some(50), "the pool's disk");
        assert_eq!(fargate.docker, DockerMode::None);
        assert_eq!(fargate.extra_tags["team"], "ci");
        assert_eq!(fargate.ssm_kms_key_id.as_deref(), Some("alias/runway"));
        assert_eq!(fargate.jit_prefix(), "/runway/ci-prod/jit/ecs");

        let docker = &pools["docker"];
        assert_eq!(docker.cluster, "stack-runners");
        assert_eq!(docker.capacity, EcsCapacity::Ec2);
        assert_eq!(docker.ec2_capacity_provider.as_deref(), Some("runner-asg"));
        assert_eq!(docker.docker, DockerMode::Dind);
        assert_eq!(docker.subnets, ["subnet-own"]);

        let own = &pools["own"];
        assert_eq!(own.task_definition, "my-runner:7");
        assert_eq!(own.container_name, "actions");
        assert_eq!(own.image, None);
        assert_eq!(own.capacity, EcsCapacity::FargateSpot, "the provider wins");
    }

    #[test]
    fn the_stack_registers_task_definitions_only_for_pools_that_name_none() {
        let document = Document::from_json(ECS_JSON, &lambda()).unwrap();
        let pools = document.ecs_pools(&ecs_defaults()).unwrap();
        let definitions = document.ecs_task_definitions(&pools, &ecs_defaults());
        assert_eq!(
            definitions.keys().collect::<Vec<_>>(),
            ["docker", "fargate"]
        );
        let fargate = &definitions["fargate"];
        assert_eq!(fargate.family, "ci-prod-runner-fargate");
        assert_eq!(fargate.image, "ghcr.io/actions/actions-runner:2.321.0");
        assert_eq!((fargate.cpu, fargate.memory), (2048, 8192));
        assert_eq!(fargate.ephemeral_storage_gib, Some(50));
        assert_eq!(
            fargate.task_role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/runner-task")
        );
        assert_eq!(fargate.container_definitions().unwrap().len(), 1);
        let docker = &definitions["docker"];
        let containers = docker.container_definitions().unwrap();
        assert_eq!(containers.len(), 2, "the runner and its dind sidecar");
        assert_eq!(containers[1].privileged(), Some(true));
    }

    #[test]
    fn an_ecs_pool_needs_a_cluster_where_it_is_deployed() {
        let text = r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ghcr.io/actions/actions-runner",
                       "provider": {"kind": "ecs"}}]}"#;
        // Readable: the stack may provide the cluster and subnets.
        let document = Document::from_json(text, &lambda()).unwrap();
        let error = document
            .ecs_pools(&EcsDefaults::for_stack("ci"))
            .unwrap_err();
        let problems: Vec<String> = error.problems().iter().map(Problem::to_string).collect();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("pools[0].provider.cluster: pool \"a\"")),
            "{problems:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("pools[0].provider.subnets:")),
            "{problems:#?}"
        );
        assert!(document.ecs_pools(&ecs_defaults()).is_ok());
    }

    #[test]
    fn each_ecs_problem_names_its_field() {
        let pool = |pool: &str, provider: &str| {
            let provider = if provider.is_empty() {
                String::new()
            } else {
                format!(", {provider}")
            };
            format!(
                r#"{{"pools": [{{"name": "a", "labels": ["x"], {pool}
                    "provider": {{"kind": "ecs"{provider}}}}}]}}"#
            )
        };
        let image = r#""image": "ghcr.io/actions/actions-runner","#;
        let cases = [
            (
                pool(image, r#""docker": "dind""#),
                "pools[0].provider.docker: pool \"a\": Docker-in-docker needs a privileged \
                 container, which Fargate does not run",
            ),
            (
                pool(image, r#""capacity": "fargate", "docker": "dind""#),
                "use capacity \"ec2\"",
            ),
            (
                pool(image, r#""capacity": "spot""#),
                "pools[0].provider.capacity: unknown variant `spot`",
            ),
            (
                pool(image, r#""docker": "podman""#),
                "pools[0].provider.docker: unknown variant `podman`",
            ),
            (
                pool(r#""image": "ami-0123", "#, ""),
                "pools[0].image: pool \"a\": ami-0123 is an AMI",
            ),
            (
                pool("", r#""cpu": 2048"#),
                "pools[0].image: pool \"a\": names no provider.task_definition",
            ),
            (
                pool(
                    r#""image": "ghcr.io/actions/actions-runner", "instance_types": ["m7g.large"],"#,
                    "",
                ),
                "pools[0].instance_types: pool \"a\": an ECS pool has no instance types",
            ),
            (
                pool(image, r#""cpu": 3000"#),
                "pools[0].provider.cpu: pool \"a\": Fargate runs tasks of 256",
            ),
            (
                pool(image, r#""cpu": 256, "memory": 8192"#),
                "pools[0].provider.memory: pool \"a\": Fargate has no task of 256 CPU units",
            ),
            (
                pool(image, r#""ephemeral_storage_gib": 500"#),
                "pools[0].provider.ephemeral_storage_gib: pool \"a\": Fargate ephemeral storage",
            ),
            (
                pool(
                    r#""image": "ghcr.io/actions/actions-runner", "disk_gib": 40,"#,
                    r#""capacity": "ec2""#,
                ),
                "pools[0].disk_gib: pool \"a\": ephemeral storage is a Fargate setting",
            ),
            (
                pool(
                    r#""image": "ghcr.io/actions/actions-runner", "disk_gib": 40,"#,
                    r#""ephemeral_storage_gib": 30"#,
                ),
                "pools[0].provider.ephemeral_storage_gib: pool \"a\": says 30 GiB",
            ),
            (
                pool("", r#""task_definition": "runner:latest""#),
                "pools[0].provider.task_definition: pool \"a\": the task definition",
            ),
            (
                pool(image, r#""capacity_provider": "asg""#),
                "pools[0].provider.capacity_provider: pool \"a\": a capacity provider name \
                 goes with capacity \"ec2\" only",
            ),
            (
                pool(image, r#""subnets": []"#),
                "pools[0].provider.subnets: pool \"a\": an ECS pool needs 1 to 16 subnets",
            ),
            (
                pool(image, r#""runner_dir": "/home/runner; reboot""#),
                "pools[0].provider.runner_dir:",
            ),
            (
                pool(image, r#""cluster": "my cluster""#),
                "pools[0].provider.cluster: pool \"a\": the cluster \"my cluster\"",
            ),
            (
                pool(image, r#""subnet": "s""#),
                "pools[0].provider.subnet: unknown field `subnet`",
            ),
        ];
        for (text, expected) in cases {
            let problems = problems_of(&text, Host::Lambda);
            assert!(
                problems.iter().any(|problem| problem.contains(expected)),
                "{text}: expected {expected:?} in {problems:#?}"
            );
        }
    }

    #[test]
    fn every_ecs_problem_of_a_pool_is_reported_at_once() {
        let text = r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ghcr.io/actions/actions-runner",
            "provider": {"kind": "ecs", "cpu": 3000, "docker": "dind", "ephemeral_storage_gib": 5}}]}"#;
        let problems = problems_of(text, Host::Lambda);
        for field in [
            "pools[0].provider.cpu:",
            "pools[0].provider.docker:",
            "pools[0].provider.ephemeral_storage_gib:",
        ] {
            assert!(
                problems.iter().any(|problem| problem.starts_with(field)),
                "{field} in {problems:#?}"
            );
        }
    }

    #[test]
    fn eks_settings_come_from_the_pool_and_its_provider() {
        let text = r#"
            [[pools]]
            name = "linux-eks"
            labels = ["self-hosted", "linux", "eks"]
            image = "ghcr.io/actions/actions-runner:2.321.0"

            [pools.provider]
            kind = "eks"
            cluster = "ci"
            namespace = "runners"
            service_account = "runner"
            cpu = 2
            memory = "4Gi"
            cpu_limit = "2500m"
            node_selector = { "kubernetes.io/arch" = "arm64" }
            tolerations = [{ key = "ci", operator = "Exists", effect = "NoSchedule" }]
            labels = { team = "platform" }
            annotations = { "example.com/owner" = "ci" }
        "#;
        let document =
            Document::from_toml(text, &ReadOptions::for_stack(Host::Lambda, "ci-prod")).unwrap();
        assert_eq!(
            document.provider("linux-eks").unwrap().kind(),
            ProviderKind::Eks
        );
        let pools = document.eks_pools("ci-prod").unwrap();
        let pool = &pools["linux-eks"];
        assert_eq!(pool.stack, "ci-prod");
        assert_eq!(pool.cluster, "ci");
        assert_eq!(pool.namespace, "runners");
        assert_eq!(pool.image, "ghcr.io/actions/actions-runner:2.321.0");
        assert_eq!(pool.service_account.as_deref(), Some("runner"));
        assert_eq!(pool.cpu.as_deref(), Some("2"));
        assert_eq!(pool.memory.as_deref(), Some("4Gi"));
        assert_eq!(pool.cpu_limit.as_deref(), Some("2500m"));
        assert_eq!(
            pool.memory_limit.as_deref(),
            Some("4Gi"),
            "the request by default"
        );
        assert_eq!(pool.node_selector["kubernetes.io/arch"], "arm64");
        assert_eq!(pool.tolerations[0].operator.as_deref(), Some("Exists"));
        assert_eq!(pool.extra_labels["team"], "platform");
        assert_eq!(pool.annotations["example.com/owner"], "ci");
        assert_eq!(pool.runner_dir, "/home/runner");
    }

    #[test]
    fn each_eks_problem_names_its_field() {
        let pool = |pool: &str, provider: &str| {
            format!(
                r#"{{"pools": [{{"name": "a", "labels": ["self-hosted", "linux"], {pool}
                    "provider": {{"kind": "eks", "cluster": "ci", "namespace": "runners"{provider}}}}}]}}"#
            )
        };
        let image = r#""image": "ghcr.io/actions/actions-runner","#;
        let cases = [
            (
                format!(
                    r#"{{"pools": [{{"name": "a", "labels": ["x"], {image} "provider": {{"kind": "eks"}}}}]}}"#
                ),
                "pools[0].provider.cluster: pool \"a\": runs on EKS but names no cluster",
            ),
            (
                format!(
                    r#"{{"pools": [{{"name": "a", "labels": ["x"], {image} "provider": {{"kind": "eks", "cluster": "c"}}}}]}}"#
                ),
                "pools[0].provider.namespace: pool \"a\": runs on EKS but names no namespace",
            ),
            (
                format!(
                    r#"{{"pools": [{{"name": "a", "labels": ["self-hosted", "Windows"], {image} "provider": {{"kind": "eks", "cluster": "c", "namespace": "n"}}}}]}}"#
                ),
                "pools[0].labels: pool \"a\": offers \"Windows\", but EKS runs runners as Linux \
                 containers: run Windows runners on EC2",
            ),
            (
                pool("", ""),
                "pools[0].image: pool \"a\": an EKS pool runs its \"image\" in a pod",
            ),
            (
                pool(r#""image": "ami-0123","#, ""),
                "pools[0].image: pool \"a\": ami-0123 is an AMI",
            ),
            (
                pool(
                    r#""image": "ghcr.io/actions/actions-runner", "instance_types": ["m7g.large"],"#,
                    "",
                ),
                "pools[0].instance_types: pool \"a\": an EKS pool has no instance types",
            ),
            (
                pool(
                    r#""image": "ghcr.io/actions/actions-runner", "disk_gib": 40,"#,
                    "",
                ),
                "pools[0].disk_gib: pool \"a\": an EKS pod uses its node's disk",
            ),
            (
                pool(
                    image,
                    r#", "cluster": "arn:aws:eks:us-east-1:1:cluster/ci""#,
                ),
                "pools[0].provider.cluster: pool \"a\": the EKS cluster",
            ),
            (
                pool(image, r#", "namespace": "CI Runners""#),
                "pools[0].provider.namespace: pool \"a\": the namespace \"CI Runners\"",
            ),
            (
                pool(image, r#", "memory": "4GB""#),
                "pools[0].provider.memory: pool \"a\": \"4GB\" is not a Kubernetes quantity",
            ),
            (
                pool(image, r#", "service_account": "Runner Account""#),
                "pools[0].provider.service_account:",
            ),
            (
                pool(
                    image,
                    r#", "tolerations": [{"key": "k", "operator": "In"}]"#,
                ),
                "pools[0].provider.tolerations: pool \"a\": a toleration's operator",
            ),
            (
                pool(image, r#", "labels": {"runway/stack": "x"}"#),
                "pools[0].provider.labels: pool \"a\": \"runway/stack\": keys under runway/",
            ),
            (
                pool(image, r#", "nodes": 3"#),
                "pools[0].provider.nodes: unknown field `nodes`",
            ),
        ];
        for (text, expected) in cases {
            let problems = problems_of(&text, Host::Lambda);
            assert!(
                problems.iter().any(|problem| problem.contains(expected)),
                "{text}: expected {expected:?} in {problems:#?}"
            );
        }
    }

    proptest::proptest! {
        /// Any sizes: an ECS pool is either accepted or refused with problems about its
        /// sizes only, never a panic.
        #[test]
        fn ecs_sizes_are_checked_field_by_field(
            cpu in proptest::option::of(0_u32..20_000),
            memory in proptest::option::of(0_u32..130_000),
            storage in proptest::option::of(0_u32..300),
        ) {
            let mut provider = serde_json::json!({"kind": "ecs"});
            for (key, value) in [("cpu", cpu), ("memory", memory), ("ephemeral_storage_gib", storage)] {
                if let Some(value) = value {
                    provider[key] = value.into();
                }
            }
            let text = serde_json::json!({"pools": [{"name": "a", "labels": ["x"],
                "image": "ghcr.io/actions/actions-runner", "provider": provider}]}).to_string();
            if let Err(error) = Document::from_json(&text, &lambda()) {
                for problem in error.problems() {
                    proptest::prop_assert!(
                        ["pools[0].provider.cpu", "pools[0].provider.memory",
                         "pools[0].provider.ephemeral_storage_gib"].contains(&problem.path.as_str()),
                        "{}", problem
                    );
                }
            }
        }
    }

    #[test]
    fn a_lambda_pool_runs_the_stack_s_function_by_default() {
        let text = r#"
            [[pools]]
            name = "short"
            labels = ["self-hosted", "linux", "short"]

            [pools.provider]
            kind = "lambda"

            [[pools]]
            name = "own-function"
            labels = ["self-hosted", "linux", "tiny"]

            [pools.provider]
            kind = "lambda"
            function = "arn:aws:lambda:us-east-1:123456789012:function:ci-prod-lambda-runner-big"
            timeout_seconds = 600
        "#;
        let document =
            Document::from_toml(text, &ReadOptions::for_stack(Host::Lambda, "ci-prod")).unwrap();
        assert_eq!(
            document.provider("short").unwrap().kind(),
            ProviderKind::Lambda
        );
        let pools = document
            .lambda_pools("ci-prod", Some("alias/runway"))
            .unwrap();
        assert_eq!(pools.len(), 2);
        let short = &pools["short"];
        assert_eq!(short.stack, "ci-prod");
        assert_eq!(short.function, "ci-prod-lambda-runner");
        assert_eq!(short.timeout, None, "asked of Lambda");
        assert_eq!(short.ssm_kms_key_id.as_deref(), Some("alias/runway"));
        let own = &pools["own-function"];
        assert!(
            own.function
                .ends_with(":function:ci-prod-lambda-runner-big")
        );
        assert_eq!(own.timeout, Some(std::time::Duration::from_secs(600)));
        assert!(document.eks_pools("ci-prod").unwrap().is_empty());
    }

    #[test]
    fn each_lambda_problem_names_its_field() {
        let pool = |fields: &str, provider: &str| {
            format!(
                r#"{{"pools": [{{"name": "a", "labels": ["self-hosted", "linux"], {fields}
                    "provider": {{"kind": "lambda"{provider}}}}}]}}"#
            )
        };
        let cases = [
            (pool(r#""image": "ami-0123","#, ""), "pools[0].image"),
            (
                pool(r#""instance_types": ["m7g.large"],"#, ""),
                "pools[0].instance_types",
            ),
            (pool(r#""disk_gib": 50,"#, ""), "pools[0].disk_gib"),
            (
                pool("", r#", "function": "has space""#),
                "pools[0].provider.function",
            ),
            (
                pool("", r#", "timeout_seconds": 1000"#),
                "pools[0].provider.timeout_seconds",
            ),
            (pool("", r#", "memory": 2048"#), "pools[0].provider.memory"),
        ];
        for (text, path) in cases {
            let problems = problems_of(&text, Host::Lambda);
            assert!(
                problems.iter().any(|problem| problem.starts_with(path)),
                "{text}: expected {path} in {problems:#?}"
            );
        }
        let windows = r#"{"pools": [{"name": "w", "labels": ["self-hosted", "windows"],
            "provider": {"kind": "lambda"}}]}"#;
        let problems = problems_of(windows, Host::Lambda);
        assert!(
            problems[0].contains("run windows runners on EC2"),
            "{problems:?}"
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
