// OpenMP helpers. Every parallel region in rnnkit goes through `parallel_region`, which
// keeps the first exception thrown by any thread and rethrows it after the region, so that
// no exception escapes an OpenMP region (which would terminate the process).
//
// Determinism: work is split into blocks whose sizes depend on the problem shape only,
// never on the number of threads, and every reduction sums in a fixed order. Threads only
// decide *who* computes a block, so results are bit-identical for any thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <utility>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace rnnkit {

// More threads than this is a mistake (libgomp cannot start them and may crash).
constexpr int kMaxThreads = 1024;

// The number of threads kernels use: set_num_threads's, or OpenMP's default; 1 in a child
// process forked after this process ran OpenMP threads (see install_fork_handler).
int get_num_threads();
// Registers the fork handler (once; called when the extension loads): a child forked after
// the parent ran OpenMP threads runs every parallel region on its calling thread, since GNU
// OpenMP's first parallel region in such a child never returns.
void install_fork_handler();
// Whether a parallel region may start OpenMP threads here (false in such a forked child);
// notes that threads have been started.
bool team_usable();
void set_num_threads(int n);
// A limit for the calling thread alone (0: none), under the global count: lets two host
// threads run two independent kernels side by side (the directions of a bidirectional layer)
// with part of the cores each.
void set_thread_limit(int n);

// The barrier of a parallel region: spins briefly (a time step's work is a few to a few
// hundred microseconds, so the others usually arrive within the spin), then yields the core.
// OpenMP's own barrier spins far longer, which is ruinous when another process keeps a core
// busy: the waiting thread burns the time slice the late thread needs, and every time step
// costs a scheduler tick (measured: 400 ms instead of 17 ms for 100 LSTM steps).
class RegionBarrier {
public:
    // For a team of at most `max_threads` threads (allocates; call outside the region).
    explicit RegionBarrier(int max_threads)
        : arrivals_(new ArrivalCount[static_cast<std::size_t>(std::max(max_threads, 1))]) {}

    // The team's size, set once inside the region (OpenMP may start fewer threads than asked).
    void set_threads(int threads) { threads_ = threads; }

    // Out of line: the kernels compiled for several instruction sets all call these.
    // The barrier in two halves, so that a thread can do work that needs only its own results
    // between announcing its results and needing the others': arrive(tid) returns a ticket,
    // wait_for(ticket) returns once every thread has arrived that often. Each thread announces
    // its arrivals in a cache line of its own, with a plain store, and reads the others'
    // lines: no read-modify-write of a line shared by all, which a counter of arrivals needs
    // (it measured 3-7% slower than this at batch 1 for the RNN, whose steps are the
    // shortest). The counts only grow, so a thread may arrive again before it has waited.
    unsigned arrive(int tid);
    void wait_for(unsigned ticket) const;
    // Both halves at once: a whole barrier.
    void wait(int tid);

    // Called by a thread whose part of the region threw: it will never arrive again, so the
    // threads waiting for it (now or later) leave their wait by throwing RegionAborted
    // instead of waiting forever.
    void abort() { aborted_.store(true, std::memory_order_release); }

    static constexpr int kSpins = 4000;

private:
    struct alignas(64) ArrivalCount {
        std::atomic<unsigned> count{0};
    };
    int threads_ = 1;
    std::unique_ptr<ArrivalCount[]> arrivals_;
    // In a line of its own: read at every spin of a wait, written once at most.
    alignas(64) std::atomic<bool> aborted_{false};
};

// Thrown out of a barrier wait when another thread of the region failed; parallel_region
// swallows it and rethrows the failing thread's exception. Not a std::exception: nothing
// else may catch it on the way out.
struct RegionAborted {};

namespace detail {
// The barrier of the region the calling thread runs in (null outside regions: serial), and
// the thread's number in the region.
inline thread_local RegionBarrier* current_barrier = nullptr;
inline thread_local int current_thread = 0;
}  // namespace detail

// Runs body(thread_id, num_threads) on `threads` threads (1 runs inline). If a thread's body
// throws, the threads waiting for it at a barrier stop waiting, and the first exception is
// rethrown once every thread has left.
template <typename Body>
void parallel_region(int threads, Body&& body) {
    std::exception_ptr error;
    std::mutex error_mutex;
#ifdef _OPENMP
    if (threads > 1 && team_usable()) {
        RegionBarrier region_barrier(threads);
#pragma omp parallel num_threads(threads)
        {
#pragma omp single
            region_barrier.set_threads(omp_get_num_threads());
            // (the end of `single` is a barrier: every thread sees the team size)
            detail::current_barrier = &region_barrier;
            detail::current_thread = omp_get_thread_num();
            try {
                body(omp_get_thread_num(), omp_get_num_threads());
            } catch (const RegionAborted&) {
                // Another thread failed first; its exception is the one to report.
            } catch (...) {
                {
                    std::lock_guard<std::mutex> lock(error_mutex);
                    if (!error) error = std::current_exception();
                }
                // The others may be waiting for this thread at a barrier.
                region_barrier.abort();
            }
            detail::current_barrier = nullptr;
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
    if (detail::current_barrier) detail::current_barrier->wait(detail::current_thread);
}

// A barrier in two halves (RegionBarrier::arrive/wait_for; no-ops when serial).
inline unsigned barrier_arrive() {
    return detail::current_barrier ? detail::current_barrier->arrive(detail::current_thread) : 0U;
}
inline void barrier_wait(unsigned ticket) {
    if (detail::current_barrier) detail::current_barrier->wait_for(ticket);
}

// Static assignment of `count` work items to threads: item k goes to thread k % nthreads.
// The same thread owns the same items at every step of a time loop.
template <typename Fn>
inline void for_each_owned(std::int64_t count, int tid, int nthreads, Fn&& fn) {
    for (std::int64_t k = tid; k < count; k += nthreads) fn(k);
}

// Tasks [0, count) of one phase of a parallel region, taken by its threads from a shared
// counter: a thread that finishes early takes the next, so tasks of unequal size still share
// the work out evenly. What a task computes must not depend on which thread runs it. Every
// thread of the region calls run() for every phase, with the same counts in the same order,
// and the phases are separated by barriers; each thread's cursor follows the counter, which
// after a phase stands at its start + count + nthreads (each thread's last claim fails once).
class SharedTasks {
public:
    class Cursor {
        std::int64_t start_ = 0;
        friend class SharedTasks;
    };

    template <typename Fn>
    void run(Cursor& cursor, std::int64_t count, int nthreads, Fn&& fn) {
        for (;;) {
            const std::int64_t task = next_.fetch_add(1, std::memory_order_relaxed) - cursor.start_;
            if (task >= count) break;
            fn(task);
        }
        cursor.start_ += count + nthreads;
    }

private:
    std::atomic<std::int64_t> next_{0};
};

// Threads worth using for `work` flops between two barriers: tiny steps stay serial.
int threads_for(double work);

}  // namespace rnnkit
