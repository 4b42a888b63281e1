#include "common/parallel.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/blas.hpp"

extern "C" {
void scipy_openblas_set_num_threads(int num_threads);
}

namespace rnnkit {

namespace {
std::atomic<int> g_num_threads{0};    // 0: not set yet, use the OpenMP default
thread_local int t_thread_limit = 0;  // 0: none
// Whether this process started OpenMP threads, and whether it is a child forked after that:
// GNU OpenMP's threads do not exist in the child, and its first parallel region there waits
// for them forever, so such a child runs every kernel on its calling thread.
std::atomic<bool> g_team_started{false};
std::atomic<bool> g_forked_after_team{false};

void on_fork_in_child() {
    if (g_team_started.load(std::memory_order_relaxed)) {
        g_forked_after_team.store(true, std::memory_order_relaxed);
    }
}

int global_num_threads() {
    if (g_forked_after_team.load(std::memory_order_relaxed)) return 1;
    const int n = g_num_threads.load(std::memory_order_relaxed);
    if (n > 0) return n;
#ifdef _OPENMP
    return std::max(1, omp_get_max_threads());
#else
    return 1;
#endif
}
}  // namespace

void install_fork_handler() {
    static const int installed = pthread_atfork(nullptr, nullptr, on_fork_in_child);
    (void)installed;
}

bool team_usable() {
    if (g_forked_after_team.load(std::memory_order_relaxed)) return false;
    if (!g_team_started.load(std::memory_order_relaxed)) {
        g_team_started.store(true, std::memory_order_relaxed);
    }
    return true;
}

int get_num_threads() {
    const int n = global_num_threads();
    return t_thread_limit > 0 ? std::min(n, t_thread_limit) : n;
}

void set_thread_limit(int n) {
    if (n < 0 || n > kMaxThreads) {
        throw std::invalid_argument("n must be an integer in [0, " + std::to_string(kMaxThreads) +
                                    "], got " + std::to_string(n));
    }
    t_thread_limit = n;
}

void set_num_threads(int n) {
    if (n < 1 || n > kMaxThreads) {
        throw std::invalid_argument("n must be an integer in [1, " + std::to_string(kMaxThreads) +
                                    "], got " + std::to_string(n));
    }
    g_num_threads.store(n, std::memory_order_relaxed);
}

namespace {
// Spins briefly until `done`, then yields the core until it holds.
template <typename Done>
void spin_until(Done&& done) {
    for (int spin = 0; !done(); ++spin) {
        if (spin < RegionBarrier::kSpins) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            std::this_thread::yield();
        }
    }
}
}  // namespace

void RegionBarrier::wait(int tid) {
    wait_for(arrive(tid));
}

unsigned RegionBarrier::arrive(int tid) {
    std::atomic<unsigned>& mine = arrivals_[static_cast<std::size_t>(tid)].count;
    const unsigned ticket = mine.load(std::memory_order_relaxed) + 1;
    mine.store(ticket, std::memory_order_release);
    return ticket;
}

void RegionBarrier::wait_for(unsigned ticket) const {
    for (int t = 0; t < threads_; ++t) {
        const std::atomic<unsigned>& count = arrivals_[static_cast<std::size_t>(t)].count;
        // (the counts wrap: compared by their difference)
        spin_until([&] {
            if (aborted_.load(std::memory_order_relaxed)) throw RegionAborted{};
            return static_cast<int>(count.load(std::memory_order_acquire) - ticket) >= 0;
        });
    }
}

int threads_for(double work) {
    // Below ~5e4 flops (a couple of microseconds) between two barriers, the barriers and the
    // fork/join cost more than the second thread saves.
    if (work < 5.0e4) return 1;
    return get_num_threads();
}

}  // namespace rnnkit

namespace rnnkit::blas {
void use_single_threaded_blas() {
    scipy_openblas_set_num_threads(1);
}
}  // namespace rnnkit::blas
