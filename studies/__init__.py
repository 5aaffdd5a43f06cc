"""Reproducible validation study of lightning_repgap (``python -m studies.validation``, see ``docs/validation.md``)."""
