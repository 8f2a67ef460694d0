// The formulas of profiles.h, restated from lensing_physics.md (our notation; no code copied).
#include "data/lens/profiles.h"

#include <algorithm>
#include <cmath>

namespace halo::data::lens {

void ellipticity_to_q_phi(double e1, double e2, double& q, double& phi) {
  double e = std::min(std::hypot(e1, e2), 0.9999);
  phi = std::atan2(e2, e1) / 2;
  q = (1 - e) / (1 + e);
}

namespace {
// Into the profile frame (x' along the major axis) and back.
inline void to_frame(double dx, double dy, double phi, double& xp, double& yp) {
  const double c = std::cos(phi), s = std::sin(phi);
  xp = dx * c + dy * s;
  yp = -dx * s + dy * c;
}
inline Vec2 from_frame(double ax, double ay, double phi) {
  const double c = std::cos(phi), s = std::sin(phi);
  return {ax * c - ay * s, ax * s + ay * c};
}
}  // namespace

// Closed-form isothermal ellipse (Kormann et al. 1994), b = theta_E sqrt(q),
// psi_e = sqrt(q^2 x'^2 + y'^2); near q = 1 the SIS limit avoids 0/0.
Vec2 sie_deflection(double x, double y, double theta_e, double e1, double e2, double cx, double cy) {
  double q, phi;
  ellipticity_to_q_phi(e1, e2, q, phi);
  double xp, yp;
  to_frame(x - cx, y - cy, phi, xp, yp);
  if (1 - q < 1e-6) {
    const double r = std::max(std::hypot(xp, yp), 1e-15);
    return from_frame(theta_e * xp / r, theta_e * yp / r, phi);
  }
  const double b = theta_e * std::sqrt(q);
  const double f = std::sqrt(1 - q * q);
  const double s = 1e-10 / std::sqrt(q);  // lenstronomy's tiny core keeps r = 0 finite
  const double psi = std::sqrt(q * q * (s * s + xp * xp) + yp * yp);
  const double ax = b / f * std::atan(f * xp / (psi + s));
  const double ay = b / f * std::atanh(f * yp / (psi + q * q * s));
  return from_frame(ax, ay, phi);
}

double sie_kappa(double x, double y, double theta_e, double e1, double e2, double cx, double cy) {
  double q, phi;
  ellipticity_to_q_phi(e1, e2, q, phi);
  double xp, yp;
  to_frame(x - cx, y - cy, phi, xp, yp);
  return theta_e / (2 * std::sqrt(q * xp * xp + yp * yp / q));
}

double sie_potential(double x, double y, double theta_e, double e1, double e2, double cx, double cy) {
  double q, phi;
  ellipticity_to_q_phi(e1, e2, q, phi);
  double xp, yp;
  to_frame(x - cx, y - cy, phi, xp, yp);
  const Vec2 a = sie_deflection(x, y, theta_e, e1, e2, cx, cy);
  double axp, ayp;  // the deflection in the profile frame
  to_frame(a.x, a.y, phi, axp, ayp);
  return xp * axp + yp * ayp;
}

Vec2 shear_deflection(double x, double y, double g1, double g2, double ra0, double dec0) {
  const double dx = x - ra0, dy = y - dec0;
  return {g1 * dx + g2 * dy, g2 * dx - g1 * dy};
}

Vec2 point_mass_deflection(double x, double y, double theta_e, double cx, double cy) {
  const double dx = x - cx, dy = y - cy;
  const double r2 = std::max(dx * dx + dy * dy, 1e-50);
  return {theta_e * theta_e * dx / r2, theta_e * theta_e * dy / r2};
}

namespace {
double nfw_rho0(double rs, double alpha_rs) { return alpha_rs / (4 * rs * rs * (1 + std::log(0.5))); }
// A(X) of section 3.5.
double nfw_A(double X) {
  if (X < 1) return std::acosh(1 / X) / std::sqrt(1 - X * X);
  if (X > 1) return std::acos(1 / X) / std::sqrt(X * X - 1);
  return 1.0;
}
double nfw_g(double X) {
  X = std::max(X, 1e-6);
  return std::log(X / 2) + nfw_A(X);
}
}  // namespace

Vec2 nfw_deflection(double x, double y, double rs, double alpha_rs, double cx, double cy) {
  rs = std::max(rs, 1e-7);
  const double dx = x - cx, dy = y - cy;
  const double R = std::max(std::hypot(dx, dy), 1e-8);
  const double X = R / rs;
  const double f = 4 * nfw_rho0(rs, alpha_rs) * rs * nfw_g(X) / (X * X);
  return {f * dx, f * dy};
}

double nfw_kappa(double x, double y, double rs, double alpha_rs, double cx, double cy) {
  rs = std::max(rs, 1e-7);
  const double R = std::max(std::hypot(x - cx, y - cy), 1e-8);
  const double X = R / rs;
  const double rho0 = nfw_rho0(rs, alpha_rs);
  if (std::abs(X - 1) < 1e-9) return 2 * rho0 * rs / 3;
  return 2 * rho0 * rs * (1 - nfw_A(X)) / (X * X - 1);
}

namespace {
double tnfw_L(double X, double tau) { return std::log(X / (tau + std::sqrt(tau * tau + X * X))); }
double tnfw_g(double X, double tau) {
  const double t2 = tau * tau;
  return t2 / ((t2 + 1) * (t2 + 1)) *
         ((t2 + 1 + 2 * (X * X - 1)) * nfw_A(X) + M_PI * tau + (t2 - 1) * std::log(tau) +
          std::sqrt(t2 + X * X) * (-M_PI + (t2 - 1) * tnfw_L(X, tau) / tau));
}
}  // namespace

Vec2 tnfw_deflection(double x, double y, double rs, double alpha_rs, double r_trunc, double cx, double cy) {
  const double dx = x - cx, dy = y - cy;
  const double R = std::max(std::hypot(dx, dy), 0.001 * rs);
  const double X = std::max(R / rs, 0.001), tau = r_trunc / rs;
  const double f = 4 * nfw_rho0(rs, alpha_rs) * rs * tnfw_g(X, tau) / (X * X);
  return {f * dx, f * dy};
}

double tnfw_kappa(double x, double y, double rs, double alpha_rs, double r_trunc, double cx, double cy) {
  const double R = std::max(std::hypot(x - cx, y - cy), 0.001 * rs);
  const double X = std::max(R / rs, 0.001), tau = r_trunc / rs, t2 = tau * tau;
  const double A = nfw_A(X);
  const double first = std::abs(X - 1) < 1e-9 ? (t2 + 1) / 3 : (t2 + 1) * (1 - A) / (X * X - 1);
  const double st = std::sqrt(t2 + X * X);
  return 2 * nfw_rho0(rs, alpha_rs) * rs * t2 / ((t2 + 1) * (t2 + 1)) *
         (first + 2 * A - M_PI / st + (t2 - 1) * tnfw_L(X, tau) / (tau * st));
}

double tnfw_total_mass(double rs, double alpha_rs, double r_trunc) {
  const double tau = r_trunc / rs, t2 = tau * tau;
  const double T = t2 / ((t2 + 1) * (t2 + 1)) * ((t2 - 1) * std::log(tau) + M_PI * tau - (t2 + 1));
  return 4 * M_PI * nfw_rho0(rs, alpha_rs) * rs * rs * rs * T;
}

void nfw_physical_to_angle(double m200, double c, double d_l, double sigma_cr_mpc2, double rho_crit,
                           double& rs_arcsec, double& alpha_rs_arcsec) {
  constexpr double kArcsec = M_PI / 180.0 / 3600.0;
  const double r200 = std::cbrt(3 * m200 / (4 * M_PI * 200 * rho_crit));
  const double r_s = r200 / c;
  const double mu = std::log(1 + c) - c / (1 + c);
  const double rho_s = 200.0 / 3.0 * rho_crit * c * c * c / mu;
  rs_arcsec = r_s / d_l / kArcsec;
  alpha_rs_arcsec = 4 * rho_s * r_s * r_s * (1 + std::log(0.5)) / (sigma_cr_mpc2 * d_l) / kArcsec;
}

double sersic_bn(double n) { return std::max(1.9992 * n - 0.3271, 1e-5); }

double sersic(double x, double y, double amp, double r_sersic, double n, double e1, double e2, double cx, double cy) {
  const double dx = x - cx, dy = y - cy;
  const double norm = std::sqrt(1 - e1 * e1 - e2 * e2);
  const double xt = ((1 - e1) * dx - e2 * dy) / norm, yt = (-e2 * dx + (1 + e1) * dy) / norm;
  const double rsers = std::max(r_sersic, 1e-4);
  const double R = std::max(std::hypot(xt, yt), 1e-4);
  if (R > 1000 * rsers) return 0.0;
  return amp * std::exp(-sersic_bn(n) * (std::pow(R / rsers, 1 / n) - 1));
}

double sersic_total_flux(double amp, double r_sersic, double n) {
  const double bn = sersic_bn(n);
  return 2 * M_PI * n * amp * r_sersic * r_sersic * std::exp(bn) * std::pow(bn, -2 * n) * std::tgamma(2 * n);
}

}  // namespace halo::data::lens
