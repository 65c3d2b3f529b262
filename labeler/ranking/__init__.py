"""N responses per prompt (`labeler rank`): rank each prompt's responses with a judge, export DPO pairs and
rankings from them, and measure rankings against human ratings or votes."""
