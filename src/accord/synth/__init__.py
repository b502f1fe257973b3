"""Sample multi-source customer data with known truth (`accord synth`).

    from accord.synth import generate
    report = generate(Path("demo"), people=10_000, seed=1)

See docs/synth.md for the behaviour model and every variation rate.
"""

from accord.synth.generate import FILES, SynthReport, generate
from accord.synth.rates import VariationRates

__all__ = ["FILES", "SynthReport", "VariationRates", "generate"]
