"""The engine: prepare (everything derived from an instance, once) -> pairing -> placement
(model, ceiling, strategies) -> sets -> re-plan -> reasons -> assemble -> solve. It imports the
contract, comparison and the lower layers; never the front ends, rendering or tools."""
