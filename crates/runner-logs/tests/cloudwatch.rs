//! Runner log groups and streams on moto's CloudWatch Logs (127.0.0.1).

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use runway_runner_logs::{
    CloudWatchRunnerLogs, RunnerLogGroups, RunnerLogLocation, RunnerLogReader, StreamName,
    runner_log_group,
};
use runway_testkit::MotoServer;

async fn client() -> aws_sdk_cloudwatchlogs::Client {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    aws_sdk_cloudwatchlogs::Client::new(&moto.sdk_config().await)
}

async fn put(client: &aws_sdk_cloudwatchlogs::Client, group: &str, stream: &str, lines: &[String]) {
    client
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for chunk in lines.chunks(5000) {
        client
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(
                chunk
                    .iter()
                    .map(|line| {
                        InputLogEvent::builder()
                            .timestamp(now)
                            .message(line)
                            .build()
                            .unwrap()
                    })
                    .collect(),
            ))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pools_group_is_made_once_tagged_and_kept_for_the_stacks_retention() {
    let client = client().await;
    let group = runner_log_group("logs-made", "linux-x64");
    assert_eq!(group, "/runway/logs-made/runners/linux-x64");
    let logs = CloudWatchRunnerLogs::new(client.clone(), Some(14));
    logs.ensure_group(&group).await.unwrap();
    // Again (a second launch), and from another process that finds it made.
    logs.ensure_group(&group).await.unwrap();
    CloudWatchRunnerLogs::new(client.clone(), Some(14))
        .ensure_group(&group)
        .await
        .unwrap();
    let groups = client
        .describe_log_groups()
        .log_group_name_prefix(&group)
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups().len(), 1);
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(14));

    // A group that exists without the stack's retention (an earlier try made it, then its
    // retention call failed) gets it from the next process that ensures it.
    let bare = runner_log_group("logs-made", "bare");
    client
        .create_log_group()
        .log_group_name(&bare)
        .send()
        .await
        .unwrap();
    logs.ensure_group(&bare).await.unwrap();
    let described = client
        .describe_log_groups()
        .log_group_name_prefix(&bare)
        .send()
        .await
        .unwrap();
    assert_eq!(described.log_groups()[0].retention_in_days(), Some(14));
    let tags = client
        .list_tags_for_resource()
        .resource_arn(groups.log_groups()[0].arn().unwrap().trim_end_matches(":*"))
        .send()
        .await
        .unwrap();
    let tags = tags.tags().unwrap();
    assert_eq!(
        tags.get("runway:stack").map(String::as_str),
        Some("logs-made")
    );
    assert_eq!(tags.get("runway:managed").map(String::as_str), Some("true"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runners_stream_is_read_whole_across_pages_in_order() {
    let client = client().await;
    let group = runner_log_group("logs-read", "linux-x64");
    let logs = CloudWatchRunnerLogs::new(client.clone(), None);
    logs.ensure_group(&group).await.unwrap();
    // More than one page of GetLogEvents (10,000 events at most).
    let lines: Vec<String> = (0..12_500).map(|i| format!("line {i}")).collect();
    put(&client, &group, "logs-read-7-a1-1", &lines).await;
    let read = logs
        .read(&RunnerLogLocation {
            group: group.clone(),
            stream: StreamName::Exact("logs-read-7-a1-1".into()),
        })
        .await
        .unwrap()
        .unwrap();
    let messages: Vec<String> = read.into_iter().map(|line| line.message).collect();
    assert_eq!(messages, lines);
    // A runner that never shipped anything, and a group that does not exist.
    for (group, stream) in [
        (group.as_str(), "logs-read-8-a1-1"),
        ("/runway/none/runners/x", "r"),
    ] {
        let missing = logs
            .read(&RunnerLogLocation {
                group: group.into(),
                stream: StreamName::Exact(stream.into()),
            })
            .await
            .unwrap();
        assert_eq!(missing, None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ecs_tasks_stream_is_found_by_its_task_id() {
    let client = client().await;
    let group = "/runway/logs-ecs/ecs-runners";
    client
        .create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    put(&client, group, "runway/runner/0aaa", &["other task".into()]).await;
    put(
        &client,
        group,
        "runway/runner/0f3a",
        &["Running job: build".into()],
    )
    .await;
    let logs = CloudWatchRunnerLogs::new(client.clone(), None);
    let read = logs
        .read(&RunnerLogLocation {
            group: group.into(),
            stream: StreamName::Matching {
                prefix: "runway/".into(),
                suffix: "/0f3a".into(),
            },
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read[0].message, "Running job: build");
}
