"""The one place autocurriculum talks to Tunix, JAX, Flax, qwix and Orbax.

Everything else in the package is pure Python and testable without a model. The daemon sees only
what this package exports: build a tokenizer and a base model from the policy, open a GRPO session
over a data stream, swap its reward functions, checkpoint it, read Tunix's own figures, sample for
evaluation.
"""

from autocurriculum.tunix_adapter.environment import configure_jax
from autocurriculum.tunix_adapter.model import ModelBundle, build_model_bundle
from autocurriculum.tunix_adapter.session import GrpoSession

__all__ = ["GrpoSession", "ModelBundle", "build_model_bundle", "configure_jax"]
