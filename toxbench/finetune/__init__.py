"""Fine-tuning: CoT SFT with the Dynamic Weighted Loss, DPO, encoder fine-tuning, and model registration."""
