print("spio")
