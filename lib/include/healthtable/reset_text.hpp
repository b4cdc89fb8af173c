// `reset`, applied and described in one place: healthctl (writing the table
// itself) and the prober (asked over its control socket) do the same thing
// and answer with the same line.
#pragma once

#include <healthtable/writer.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace healthtable {

/// Resets every provider (`providers` empty) or those listed, all or
/// nothing: an unknown name throws unknown_provider before anything
/// changes. Returns the reply: "reset groq of 'gw'", or "reset all 3
/// providers of 'gw'; generation now 0x...", followed, when the scope kept
/// overrides, by which ones and how to clear them.
std::string apply_reset(Writer& writer, std::string_view segment,
                        const std::vector<std::string>& providers, ResetScope scope);

} // namespace healthtable
