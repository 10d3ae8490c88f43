//! The CLI against a server that requires tokens: `--token` and `STREAMGATE_TOKEN`.

use streamgate_server::Settings;
use streamgate_testkit::AuthFile;

use crate::support::{cli_with_env, on_each_broker_with, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_comes_from_the_flag_or_the_environment_and_permissions_hold() {
    let file = AuthFile::new(&[("reader", "reader-token", &["topics", "subscribe:*"])]);
    let auth = |s: &mut Settings| file.apply(s);
    on_each_broker_with(auth, |server| async move {
        let topic = server.topic(1).await;
        let url = server.url();

        let refused = cli_with_env(&url, &["topics"], None, &[]).await;
        assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
        let message = stderr(&refused);
        assert!(
            message.contains("UNAUTHENTICATED") && message.contains("--token"),
            "{message}"
        );

        let listed = cli_with_env(&url, &["topics", "--token", "reader-token"], None, &[]).await;
        assert!(listed.status.success(), "{}", stderr(&listed));
        assert!(stdout(&listed).contains(&topic), "{}", stdout(&listed));

        let from_env = cli_with_env(
            &url,
            &["topics"],
            None,
            &[("STREAMGATE_TOKEN", "reader-token")],
        )
        .await;
        assert!(from_env.status.success(), "{}", stderr(&from_env));

        let denied = cli_with_env(
            &url,
            &["publish", &topic, "--value", "x"],
            None,
            &[("STREAMGATE_TOKEN", "reader-token")],
        )
        .await;
        assert_eq!(denied.status.code(), Some(1));
        let message = stderr(&denied);
        assert!(
            message.contains("PERMISSION_DENIED") && message.contains(&format!("publish:{topic}")),
            "{message}"
        );
        server.stop().await;
    })
    .await;
}
