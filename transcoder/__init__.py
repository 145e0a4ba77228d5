"""The internal transcoder: WAV bytes in, an MP3 with a Xing/LAME header and its facts out."""
