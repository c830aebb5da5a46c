"""Speech engines behind small protocols.

vad.py     frames -> speech events (webrtcvad + our endpointing state machine), sans-IO
stt.py     Transcriber protocol, WhisperTranscriber (faster-whisper), SttRunner (off the loop),
           SpeculativeStt (one speculative run per call at most)
tts.py     split_sentences, Synthesizer protocol, PiperSynthesizer, TtsRunner.stream
models.py  load_speech_models(settings) -> SpeechModels, once at startup
pcm.py     int16/float32 conversion and resampling shared by the above

Importing this package loads no model; whisper and piper are imported when first used.
"""
