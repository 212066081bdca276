"""Localisation metrics: the paper's (Sec. 3, Table 2) and those of Choe et al. (CVPR 2020).

``boxes``     top-1 and GT-known localisation (the paper's box, IoU >= 0.5); the threshold
              sweep, MaxBoxAcc and MaxBoxAccV2 (IoU 0.3 / 0.5 / 0.7, every component's box),
              a threshold calibrated on one split and reported on another; the conventions of
              the project (``PROJECT``) and of clovaai/wsolevaluation (``WSOLEVALUATION``)
``pixels``    PxAP: pixel precision-recall against exact masks, pooled over the images
``contours``  OpenCV's contour rule for "the largest box" (border following, contour area,
              its tie order), written out so wsolevaluation's numbers need no cv2

Choe, Oh, Lee, Chun, Akata, Shim, "Evaluating Weakly Supervised Object Localization Methods
Right", CVPR 2020; their reference code is github.com/clovaai/wsolevaluation (``evaluation.py``).
Every function returns fractions (wsolevaluation prints percent).
"""
from .boxes import (IOU_THRESHOLDS, PROJECT, THRESHOLDS, WSOLEVALUATION, best_ious, box_accuracy,
                    boxes_at_thresholds, calibrated_box_acc, gt_known_localization, iou_matrix,
                    masks_at_thresholds, max_box_acc, max_box_acc_v2, resize_box, top1_localization,
                    wsol_thresholds)
from .contours import contour_area, largest_by_contour_area
from .pixels import pixel_precision_recall, pxap

__all__ = ["THRESHOLDS", "IOU_THRESHOLDS", "PROJECT", "WSOLEVALUATION", "wsol_thresholds", "iou_matrix",
           "resize_box", "masks_at_thresholds", "boxes_at_thresholds", "best_ious", "box_accuracy",
           "max_box_acc", "max_box_acc_v2", "calibrated_box_acc", "gt_known_localization",
           "top1_localization", "pixel_precision_recall", "pxap", "contour_area", "largest_by_contour_area"]
