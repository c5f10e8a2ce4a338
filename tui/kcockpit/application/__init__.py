"""The application layer: wires sources, the simulator, the policy engine and the aggregates
into what the cockpit and the command-line reports run on. It never imports textual."""
