// Which threads are using an object that must not be read while it is changed (a hash table
// that rehashes as it grows). Any number of threads may read it at once; a change must not
// overlap any other thread's use. An access that would overlap is refused at once with
// ConcurrentAccess, never waited for: a wait could deadlock (a thread holding the Python GIL
// waiting for one that needs it, or two merges taking two objects in opposite orders).
//
// Accesses nest within a thread: a thread that is changing the object may read it and change
// it again (a compound operation claims it first, then makes calls that claim it again).
#pragma once

#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace rnnkit {

class ConcurrentAccess : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class AccessState {
public:
    AccessState() = default;
    // (a copy or a moved-to object is a new object: nobody is using it)
    AccessState(const AccessState&) noexcept {}
    AccessState& operator=(const AccessState&) noexcept { return *this; }

    class Read;
    class Write;
    class Claim;

private:
    // Readers from threads other than the writer. A reader counts itself in, then checks for
    // a writer; a writer names itself, then checks for readers (both sequentially consistent:
    // of two that overlap, at least one sees the other and backs out).
    std::atomic<int> readers_{0};
    std::atomic<std::thread::id> writer_{};
    int write_depth_ = 0;  // the writer's nesting (touched by the writer only)
};

// Read access for the lifetime of the guard; `what` names the object in the error.
class AccessState::Read {
public:
    Read(const AccessState& state, const char* what) : state_(const_cast<AccessState&>(state)) {
        if (state_.writer_.load() == std::this_thread::get_id()) return;  // (within a change)
        state_.readers_.fetch_add(1);
        if (state_.writer_.load() != std::thread::id()) {
            state_.readers_.fetch_sub(1);
            throw ConcurrentAccess(std::string(what) +
                                   " is being changed by another thread: an object may be read "
                                   "by many threads at once, but not while one changes it");
        }
        counted_ = true;
    }
    ~Read() {
        if (counted_) state_.readers_.fetch_sub(1);
    }
    Read(const Read&) = delete;
    Read& operator=(const Read&) = delete;

private:
    AccessState& state_;
    bool counted_ = false;
};

// Write access for the lifetime of the guard.
class AccessState::Write {
public:
    Write(AccessState& state, const char* what) : state_(state) {
        const std::thread::id self = std::this_thread::get_id();
        if (state_.writer_.load() == self) {
            ++state_.write_depth_;
            return;
        }
        std::thread::id none;
        const bool claimed = state_.writer_.compare_exchange_strong(none, self);
        if (claimed && state_.readers_.load() == 0) {
            state_.write_depth_ = 1;
            return;
        }
        if (claimed) state_.writer_.store(std::thread::id());
        throw ConcurrentAccess(std::string(what) +
                               " is in use by another thread (or by a read this thread has "
                               "open): it cannot be changed until that use ends (an object "
                               "may be read by many threads at once, but a change must not "
                               "overlap any other use)");
    }
    ~Write() {
        if (--state_.write_depth_ == 0) state_.writer_.store(std::thread::id());
    }
    Write(const Write&) = delete;
    Write& operator=(const Write&) = delete;

private:
    AccessState& state_;
};

// Read or write access, chosen at run time, for the lifetime of the guard.
class AccessState::Claim {
public:
    Claim(AccessState& state, const char* what, bool change) {
        if (change) {
            write_.emplace(state, what);
        } else {
            read_.emplace(state, what);
        }
    }

private:
    std::optional<Read> read_;
    std::optional<Write> write_;
};

}  // namespace rnnkit
