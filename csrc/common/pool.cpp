#include "common/pool.hpp"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace rnnkit::pool {

namespace {

std::size_t rounded(std::size_t bytes) {
    return (bytes + 63) / 64 * 64;
}

struct Pool {
    std::mutex mutex;
    std::unordered_map<std::size_t, std::vector<void*>> idle;  // by rounded size
    std::size_t idle_bytes = 0;
};

Pool& the_pool() {
    // Never destroyed: arrays may be freed during interpreter shutdown, after static
    // destructors would have run.
    static Pool* pool = new Pool;
    return *pool;
}

}  // namespace

void* allocate(std::size_t bytes) {
    const std::size_t size = rounded(bytes == 0 ? 1 : bytes);
    if (size >= kPooledBytes) {
        Pool& pool = the_pool();
        std::lock_guard<std::mutex> lock(pool.mutex);
        auto found = pool.idle.find(size);
        if (found != pool.idle.end() && !found->second.empty()) {
            void* block = found->second.back();
            found->second.pop_back();
            pool.idle_bytes -= size;
            return block;
        }
    }
    void* block = std::aligned_alloc(64, size);
    if (!block) throw std::bad_alloc();
    return block;
}

void release(void* block, std::size_t bytes) noexcept {
    if (!block) return;
    const std::size_t size = rounded(bytes == 0 ? 1 : bytes);
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
    std::free(block);
}

void clear() noexcept {
    Pool& pool = the_pool();
    std::lock_guard<std::mutex> lock(pool.mutex);
    for (auto& [size, blocks] : pool.idle) {
        for (void* block : blocks) std::free(block);
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
