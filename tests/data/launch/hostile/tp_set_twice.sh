#!/bin/bash
NNODES=2
NPUS_PER_NODE=8
TP=4
GPT_ARGS="
    --tensor-model-parallel-size ${TP} \
    --num-layers 32 \
    --hidden-size 4096 \
    --num-attention-heads 32 \
    --global-batch-size 64 \
    --seq-length 4096 \
    --vocab-size 32000
"
torchrun --nnodes $NNODES --nproc_per_node $NPUS_PER_NODE pretrain_gpt.py $GPT_ARGS \
    --tensor-model-parallel-size 8
