//! The store contract against the in-memory store, on virtual time.

mod contract;

use std::sync::Arc;

use contract::Fixture;
use proptest::prelude::*;
use runway_clock::VirtualClock;
use runway_store::MemoryStore;

async fn fixture() -> Fixture {
    let clock = VirtualClock::new().shared();
    let store = Arc::new(MemoryStore::new(clock.clone()));
    Fixture::new(
        store,
        clock,
        Box::new(|by| Box::pin(tokio::time::advance(by))),
    )
}

contract_tests!(
    #[tokio::test(start_paused = true)]
    fixture
);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn slot_counters_always_match_holders_and_ceilings(ops in contract::slot_ops(40)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let fixture = fixture().await;
            contract::slot_accounting_matches_model(fixture.store.as_ref(), &ops, true).await;
        });
    }
}

#[tokio::test(start_paused = true)]
async fn the_store_is_usable_behind_a_shared_pointer() {
    let store: Arc<dyn runway_store::Store> = fixture().await.store;
    let shared = store.clone();
    let handle = tokio::spawn(async move {
        shared
            .load(
                &contract::pool("p"),
                &contract::org("o"),
                &contract::repo("o/r"),
            )
            .await
    });
    assert_eq!(
        handle.await.unwrap().unwrap(),
        runway_store::Load::default()
    );
}
