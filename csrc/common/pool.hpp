// Memory for large arrays, kept for reuse when freed.
//
// A training loop asks for arrays of the same sizes at every step (caches, gradients, scratch).
// Given back to the C library, large blocks return to the operating system, and the next step
// pays a page fault and the kernel's zeroing for every page it touches again: measured, more
// than half of an LSTM training forward at (100, 8, 256, 256). Blocks of at least
// kPooledBytes freed through `release` wait in a pool for the next request, which takes the
// smallest idle block that fits if it is under 4x the request (best fit); at most kIdleBytes
// are kept idle, and `clear` (rnnkit.release_memory()) frees them all.
// Thread-safe.
#pragma once

#include <cstddef>

namespace rnnkit::pool {

constexpr std::size_t kPooledBytes = std::size_t{256} << 10;  // 256 KiB
constexpr std::size_t kIdleBytes = std::size_t{1} << 30;      // 1 GiB

// At least `bytes` bytes, 64-byte aligned; throws std::bad_alloc.
void* allocate(std::size_t bytes);
// Gives back a block from allocate(bytes).
void release(void* block, std::size_t bytes) noexcept;
// Frees every idle block.
void clear() noexcept;
// Bytes held idle.
std::size_t idle_bytes() noexcept;

}  // namespace rnnkit::pool
