import Compute
print(Threads.blasConfig)
