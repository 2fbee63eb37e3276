"""Train a classifier on imbalanced data: python train.py [-m] [group=option] [key=value].

The same as ``losslab train``: the application and its config groups live in the package
(:mod:`losslab.app`, ``conf/``).
"""

if __name__ == "__main__":
    from losslab.app import run
    from losslab.process import then_exit

    then_exit(run)
