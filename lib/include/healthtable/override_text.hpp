// What an override means, in the one sentence healthctl prints and the
// prober replies with: both paths of `healthctl set` say the same thing.
#pragma once

#include <healthtable/writer.hpp>

#include <string>
#include <string_view>

namespace healthtable {

/// "groq: forced down; unavailable for 2h or until 'healthctl set gw groq
/// auto'" and its up/auto siblings. `available_now` is only used for auto.
std::string describe_override(std::string_view segment, std::string_view provider,
                              const OverrideRequest& request, bool available_now);

} // namespace healthtable
