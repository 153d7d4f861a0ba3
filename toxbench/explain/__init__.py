"""Explainable detection (ToxiTrace): span metrics, saliency, span extraction, faithfulness."""
