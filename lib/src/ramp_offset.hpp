// This process's offset into slow-start ramps (docs/breaker.md, "Slow
// start"): where in a ramp this process re-admits a provider whose window
// ended, so N worker processes come back spread over the ramp, not at once.
#pragma once

#include <cstdint>

namespace healthtable::detail {

/// 0..9999 (parts per ten thousand of the ramp), uniform, drawn once per
/// process and drawn again in every child a fork() makes: a pre-forking
/// server that opens the table before it forks (gunicorn --preload) would
/// otherwise hand every worker its parent's offset, and they would all come
/// back at the same instant: the herd the ramp exists to prevent. One
/// relaxed load once drawn; no syscall, no shared write.
std::int64_t ramp_offset() noexcept;

} // namespace healthtable::detail
