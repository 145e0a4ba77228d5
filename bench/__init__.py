"""``python -m bench``: riffle side by side with the raw ffmpeg encode, on generated WAV files."""
