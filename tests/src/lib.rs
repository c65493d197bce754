pub mod app;
pub mod dashboard_http;
pub mod fake_asc;
pub mod fake_google_play;
pub mod faults;
pub mod logs;
pub mod moto;
pub mod receiver;
pub mod spec;
pub mod standard_webhooks;
pub mod store_contract;
pub mod test_keys;
pub mod webdriver;

/// Emits each scenario `async fn name(backend: Backend)` as two tests, `embedded::name` and
/// `aws::name` (DynamoDB + Secrets Manager on moto), so one suite proves both store adapters.
/// `returning super::T;` first when the scenarios return `T` (e.g. a `Result`).
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $crate::on_both_stores!(returning (); $($name),*);
    };
    (returning $ret:ty; $($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() -> $ret {
                super::$name($crate::app::Backend::Embedded).await
            })*
        }
        mod aws {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() -> $ret {
                super::$name($crate::app::Backend::Aws).await
            })*
        }
    };
}
