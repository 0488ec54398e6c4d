//! Running per-layer work on `--jobs` threads.

use crate::error::Result;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `work` on every item on up to `jobs` threads, biggest `cost` first, and returns
/// the results in the items' order. Biggest first matters: a layer's scan cannot be
/// split, so a large layer started last would run alone while the other cores idle.
/// The first error stops new items from starting; the first in item order is returned.
pub fn biggest_first<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    cost: impl Fn(&T) -> u64,
    work: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    // Stable: equal costs keep their order.
    order.sort_by_key(|&i| std::cmp::Reverse(cost(&items[i])));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let threads = jobs.clamp(1, items.len().max(1));
    // Each thread hands back what it ran, by item index.
    let mut done: Vec<(usize, Result<R>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut ran = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        let r = work(&items[i]);
                        if r.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        ran.push((i, r));
                    }
                    ran
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    // With no failure every item ran; with one, items never started after it are absent.
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::Mutex;

    #[test]
    fn results_come_back_in_item_order_for_any_job_count() {
        let items: Vec<u64> = (0..20).map(|i| (i * 7919) % 23).collect();
        for jobs in [1, 2, 3, 64] {
            let out = biggest_first(&items, jobs, |&c| c, |&x| Ok(x * 2)).unwrap();
            assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        }
    }

    #[test]
    fn biggest_items_start_first() {
        let items = [1u64, 50, 3, 40];
        let started = Mutex::new(Vec::new());
        biggest_first(
            &items,
            1,
            |&c| c,
            |&x| {
                started.lock().unwrap().push(x);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(started.into_inner().unwrap(), vec![50, 40, 3, 1]);
    }

    #[test]
    fn an_error_is_returned() {
        let items = [1u64, 2, 3];
        let r = biggest_first(
            &items,
            2,
            |&c| c,
            |&x| {
                if x == 2 {
                    Err(Error::Usage("two".into()))
                } else {
                    Ok(x)
                }
            },
        );
        assert!(matches!(r, Err(Error::Usage(m)) if m == "two"));
    }
}
