print("runpipe")
