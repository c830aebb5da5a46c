"""Speech engines behind small protocols, chosen by name.

engines.py     the registries: stt / tts / vad engine name -> factory (one line per engine)
scheduler.py   the priority scheduler whose workers run every call's STT and TTS jobs
stt.py         Transcriber / SttEngine protocols, SttRunner (off the loop)
streaming.py   one call's STT (UtteranceStt): a streaming engine's own stream, or
               SegmentedStt over a batch engine with SpeculativeStt at a pause
reply_text.py  a reply cut into sentences and chunks (the first one a clause), sans-IO
tts.py         Synthesizer / TtsVoice protocols, TtsRunner.stream (chunk by chunk)
vad.py         VadEngine protocol and the engine-independent segmenter state machine (sans-IO)
whisper.py     the "whisper" STT engine (faster-whisper, batch)
piper.py       the "piper" TTS engine: named voices, each model file loaded once
silero_vad.py  the "silero" VAD engine (the default): Silero, pooled per-call models
webrtc_vad.py  the "webrtcvad" VAD engine
models.py      load_speech_models(settings) -> SpeechModels, once at startup

Importing this package loads no model; whisper and piper are imported when first used.
"""
