"""Listen-Attend-Spell speech recognition built from speechattn.nn.

Modules:
    model        LASConfig, LAS: listener (pyramidal BiLSTM), speller (attention decoder), CTC head
    specaugment  SpecAugmentConfig, SpecAugment (training only)
    loss         ObjectiveConfig (scheduled sampling: objective.feedback), las_loss
    search       SearchConfig, greedy_search, beam_search, decode (bounded, batched)
    ctc_prefix   CTCPrefixScorer for joint CTC/attention beam search
    data         ASRDataConfig, ASRDataset (audio checks, feature cache), FeatureFrontEnd
    recipe       ASRRecipeConfig and the experiment folder's files
    task         ASRTask: the shared trainer's Task for LAS
    training     the ``train`` command (recipes/asr/train.py)
    inference    load_asr, transcribe, decode_dataset
    scoring      hyp/per-utterance/summary files, alignment plots
    infer        the ``infer`` command (recipes/asr/infer.py)
"""
