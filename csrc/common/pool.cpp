#include "common/pool.hpp"

#include <pthread.h>

#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace rnnkit::pool {

namespace {

// Each block starts with a header holding its capacity (the rounded size it was allocated
// with), so that a block handed out for a smaller request goes back under its own size.
constexpr std::size_t kHeaderBytes = 64;

std::size_t rounded(std::size_t bytes) {
    return (bytes + 63) / 64 * 64;
}

struct Pool {
    std::mutex mutex;
    std::map<std::size_t, std::vector<void*>> idle;  // by capacity
    std::size_t idle_bytes = 0;
};

void lock_for_fork();
void unlock_after_fork();

Pool& the_pool() {
    // Never destroyed: arrays may be freed during interpreter shutdown, after static
    // destructors would have run.
    static Pool* pool = [] {
        auto* created = new Pool;
        // A fork while another thread holds the mutex (a kernel allocating with the GIL
        // released) would leave it locked forever in the child: the fork waits for it, and
        // both processes release it after.
        pthread_atfork(lock_for_fork, unlock_after_fork, unlock_after_fork);
        return created;
    }();
    return *pool;
}

void lock_for_fork() {
    the_pool().mutex.lock();
}
void unlock_after_fork() {
    the_pool().mutex.unlock();
}

std::size_t& capacity_of(void* block) {
    return *reinterpret_cast<std::size_t*>(static_cast<char*>(block) - kHeaderBytes);
}

}  // namespace

void* allocate(std::size_t bytes) {
    // No block this large can exist; refused before rounding it up (or 4x it) could wrap.
    if (bytes > std::numeric_limits<std::size_t>::max() / 8) throw std::bad_alloc();
    const std::size_t size = rounded(bytes == 0 ? 1 : bytes);
    if (size >= kPooledBytes) {
        Pool& pool = the_pool();
        std::lock_guard<std::mutex> lock(pool.mutex);
        // The smallest idle block that fits, unless it is 4x as large or more: the pages of
        // an idle block are mapped already, so using it costs no more memory than keeping it
        // idle, and the pool's total stays near the largest working set of a step instead of
        // the sum of every size's largest count (BENCHMARKS.md, step 13).
        auto found = pool.idle.lower_bound(size);
        if (found != pool.idle.end() && found->first < 4 * size) {
            void* block = found->second.back();
            found->second.pop_back();
            pool.idle_bytes -= found->first;
            if (found->second.empty()) pool.idle.erase(found);
            return block;
        }
    }
    char* base = static_cast<char*>(std::aligned_alloc(64, kHeaderBytes + size));
    if (!base) throw std::bad_alloc();
    void* block = base + kHeaderBytes;
    capacity_of(block) = size;
    return block;
}

void release(void* block, std::size_t /*bytes*/) noexcept {
    if (!block) return;
    const std::size_t size = capacity_of(block);
    if (size >= kPooledBytes) {
        Pool& pool = the_pool();
        std::lock_guard<std::mutex> lock(pool.mutex);
        if (pool.idle_bytes + size <= kIdleBytes) {
            try {
                pool.idle[size].push_back(block);
                pool.idle_bytes += size;
                return;
            } catch (...) {
                // no room for the bookkeeping: free it instead
            }
        }
    }
    std::free(static_cast<char*>(block) - kHeaderBytes);
}

void clear() noexcept {
    Pool& pool = the_pool();
    std::lock_guard<std::mutex> lock(pool.mutex);
    for (auto& [size, blocks] : pool.idle) {
        for (void* block : blocks) std::free(static_cast<char*>(block) - kHeaderBytes);
    }
    pool.idle.clear();
    pool.idle_bytes = 0;
}

std::size_t idle_bytes() noexcept {
    Pool& pool = the_pool();
    std::lock_guard<std::mutex> lock(pool.mutex);
    return pool.idle_bytes;
}

}  // namespace rnnkit::pool
