// OpenMP helpers. Every parallel region in rnnkit goes through `parallel_region`, which
// keeps the first exception thrown by any thread and rethrows it after the region, so that
// no exception escapes an OpenMP region (which would terminate the process).
//
// Determinism: work is split into blocks whose sizes depend on the problem shape only,
// never on the number of threads, and every reduction sums in a fixed order. Threads only
// decide *who* computes a block, so results are bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <exception>
#include <mutex>
#include <utility>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace rnnkit {

// More threads than this is a mistake (libgomp cannot start them and may crash).
constexpr int kMaxThreads = 1024;

int get_num_threads();
void set_num_threads(int n);

// Runs body(thread_id, num_threads) on `threads` threads (1 runs inline).
template <typename Body>
void parallel_region(int threads, Body&& body) {
    std::exception_ptr error;
    std::mutex error_mutex;
#ifdef _OPENMP
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
        {
            try {
                body(omp_get_thread_num(), omp_get_num_threads());
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex);
                if (!error) error = std::current_exception();
            }
        }
        if (error) std::rethrow_exception(error);
        return;
    }
#endif
    (void)threads;
    body(0, 1);
}

// Barrier among the threads of the enclosing parallel_region (no-op when serial).
inline void barrier() {
#ifdef _OPENMP
#pragma omp barrier
#endif
}

// Static assignment of `count` work items to threads: item k goes to thread k % nthreads.
// The same thread owns the same items at every step of a time loop.
template <typename Fn>
inline void for_each_owned(std::int64_t count, int tid, int nthreads, Fn&& fn) {
    for (std::int64_t k = tid; k < count; k += nthreads) fn(k);
}

// Threads worth using for `work` units (rough flop count): tiny problems stay serial.
int threads_for(double work);

}  // namespace rnnkit
