import SPIOTensor
